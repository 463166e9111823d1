// Cluster mode: pending webhook events live in Redis, one stream per (app, endpoint). One node owns a
// stream at a time and delivers it; events leave the stream only once delivered or dead-lettered.
// Ownership is a delivery lease of its own, shorter than the node lease (which must be long enough
// that a node is never taken for dead in a GC pause, and removing a node's presence share is costly):
// the owner renews it every third of its length, and when the owner dies another node takes the
// stream over as soon as it runs out, and delivers what is left (at least once, in order). A node
// whose node lease is gone (it left, or was taken for dead) loses its streams at once.
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { leaseLua, type NodeLease, type NodeWatcher } from '../cluster/node-lease.js';
import { defineScripts, type Scripted } from '../redis/clients.js';
import type { RedisKeys } from '../redis/keys.js';
import { DEAD_LETTERS_KEPT_PER_APP, type DeadLetter, type QueuedEvent, type WebhookQueue } from './queue.js';

export interface RedisWebhookQueueOptions {
  redis: Redis;
  /** A connection of its own for the doorbell channel (it enters subscriber mode). */
  subscriber: Redis;
  keys: RedisKeys;
  /** This node's lease: a stream's owner delivers only while its lease holds, and loses the stream when it runs out. */
  lease: NodeLease;
  log: Logger;
}

/**
 * How long a stream's delivery lease lasts (never longer than the node lease): the longest its webhooks
 * wait when the node delivering them dies.
 */
export const DELIVERY_LEASE_MS = 2000;

// The presence scripts write to the same streams (RedisKeys.webhookStream) and ring the same doorbell:
// they queue the webhooks of the transitions they make in the same atomic step ({t, ev} JSON in field d);
// on Redis Cluster a channel's step queues them in the channel's slot and moveWebhooks (presence/
// redis-cluster-lua.ts) appends them here.
const scripts = {
  // KEYS: owner nodes. ARGV: me now ms takeOver → 1 when this node owns the stream for the next ms (it
  // did, or, with takeOver 1, the owner's delivery lease ran out, or its node lease did). Only a node
  // whose own node lease is in Redis may own one: after Redis lost its data, a node that has not
  // registered again could otherwise take a stream that a registered node holds.
  webhookClaim: {
    keys: 2,
    lua: `${leaseLua}
if not leaseValid(KEYS[2], ARGV[1], ARGV[2]) then return 0 end
local o = redis.call('GET', KEYS[1])
if o ~= ARGV[1] and (ARGV[4] ~= '1' or (o and leaseValid(KEYS[2], o, ARGV[2]))) then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
return 1`,
  },
  // KEYS: owner. ARGV: me → gives the stream up if this node owns it
  webhookRelease: { keys: 1, lua: `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0` },
};

const MAX_LOCAL_BACKLOG = 200_000;
const FLUSH_BATCH = 500;

export class RedisWebhookQueue implements WebhookQueue, NodeWatcher {
  private readonly redis: Scripted;
  private readonly sub: Redis;
  private readonly bell: string;
  /** the queues this node delivers (setQueues) */
  private queues: ReadonlySet<string> = new Set();
  /** queues taken out of the set that this node may still own in Redis: released at the next round */
  private readonly releasing = new Set<string>();
  /** queues this node owned at the last claim round → local time until which it may deliver them */
  private readonly owned = new Map<string, number>();
  /** the delivery lease: the node lease's length if that is shorter */
  private readonly deliveryLeaseMs: number;
  /**
   * Queues this node owned when its Redis connection dropped. Every delivery lease runs out during an
   * outage; right after it only these are taken again, by their owner, whose acknowledgements of
   * batches already delivered may still be on their way (another node would send them again).
   */
  private readonly ownedBeforeOutage = new Set<string>();
  private readonly lengths = new Map<string, number>();
  /** Events not yet written to Redis (it was unreachable, or the write is in flight). */
  private backlog: { queue: string; data: string }[] = [];
  private flushing?: Promise<void>;
  private wake: (q: string) => void = () => {};
  private timer?: NodeJS.Timeout;
  private started = false;
  private ticking = false;
  /** asked for a round while one ran: run another when it ends */
  private tickAgain = false;
  private lastTick = 0;
  private closed = false;
  private warnedDown = false;
  /** Events dropped because the local backlog hit its bound during a long Redis outage (logged). */
  dropped = 0;

  constructor(private readonly o: RedisWebhookQueueOptions) {
    this.redis = defineScripts(o.redis, scripts);
    this.deliveryLeaseMs = Math.min(DELIVERY_LEASE_MS, o.lease.leaseMs);
    // Ownership is confirmed again after a reconnect: meanwhile another node may have claimed a stream
    // (Redis may have lost the owner keys), and two owners would deliver the same events twice.
    o.redis.on('close', () => {
      for (const q of this.owned.keys()) this.ownedBeforeOutage.add(q);
      this.owned.clear();
    });
    this.sub = o.subscriber;
    this.bell = o.keys.webhookBell;
  }

  append(queue: string, events: { t: number; ev: object }[]): void {
    for (const e of events) this.backlog.push({ queue, data: JSON.stringify(e) });
    if (this.backlog.length > MAX_LOCAL_BACKLOG) {
      const n = this.backlog.length - MAX_LOCAL_BACKLOG;
      this.backlog.splice(0, n);
      this.dropped += n;
      this.o.log.error({ dropped: n }, 'webhook backlog full while Redis is unreachable: oldest events dropped');
    }
    if (!this.flushing) this.flushing = this.flush().finally(() => (this.flushing = undefined));
  }

  private async flush(): Promise<void> {
    // Let the events of this tick join one pipeline.
    await new Promise((r) => setImmediate(r));
    while (this.backlog.length) {
      const batch = this.backlog.slice(0, FLUSH_BATCH);
      const p = this.redis.pipeline();
      for (const b of batch) p.xadd(this.o.keys.webhookStream(b.queue), '*', 'd', b.data);
      p.publish(this.bell, [...new Set(batch.map((b) => b.queue))].join('\n'));
      let written = 0;
      try {
        const res = (await p.exec()) ?? [];
        // Pipeline replies come back in order: everything before the first error was written.
        while (written < batch.length && res[written] && !res[written][0]) written++;
      } catch {
        written = 0;
      }
      if (written) {
        this.backlog.splice(0, written);
        // At debug: the outage's own log (redis/outage-log.ts) says when Redis is away and back.
        if (this.warnedDown) this.o.log.debug('webhook events are reaching Redis again');
        this.warnedDown = false;
      }
      if (written < batch.length) {
        if (!this.warnedDown) this.o.log.debug({ waiting: this.backlog.length }, 'Redis unreachable: webhook events kept locally until it returns');
        this.warnedDown = true;
        if (this.closed) return;
        await new Promise((r) => setTimeout(r, 250));
      }
    }
  }

  async read(queue: string, max: number): Promise<QueuedEvent[]> {
    const rows = (await this.redis.xrange(this.o.keys.webhookStream(queue), '-', '+', 'COUNT', max)) as [string, string[]][];
    const out: QueuedEvent[] = [];
    for (const [id, fields] of rows) {
      const i = fields.indexOf('d');
      try {
        const { t, ev } = JSON.parse(fields[i + 1]) as { t: number; ev: object };
        out.push({ id, t, ev });
      } catch {
        // Not ours or corrupt: give it an id so it is acknowledged and does not block the stream.
        out.push({ id, t: 0, ev: { name: 'invalid' } });
      }
    }
    return out;
  }

  async ack(queue: string, ids: string[]): Promise<void> {
    if (!ids.length) return;
    await this.redis.xdel(this.o.keys.webhookStream(queue), ...ids);
    const n = this.lengths.get(queue);
    if (n !== undefined) this.lengths.set(queue, Math.max(0, n - ids.length));
  }

  owns(queue: string): boolean {
    return !this.closed && (this.owned.get(queue) ?? 0) > Date.now() && this.o.lease.held();
  }

  /** A dead node's streams are free now: take them over at once rather than at the next round. */
  nodeGone(): void {
    void this.tick();
  }

  onWake(fn: (q: string) => void): void {
    this.wake = fn;
  }

  depth(): number {
    let n = this.backlog.length;
    for (const v of this.lengths.values()) n += v;
    return n;
  }

  async pushDead(rec: DeadLetter): Promise<void> {
    const key = this.o.keys.webhookDead(rec.appId);
    await this.redis.multi().lpush(key, JSON.stringify(rec)).ltrim(key, 0, DEAD_LETTERS_KEPT_PER_APP - 1).exec();
  }

  async listDead(appId: string): Promise<DeadLetter[]> {
    const rows = await this.redis.lrange(this.o.keys.webhookDead(appId), 0, -1);
    return rows.reverse().map((r) => JSON.parse(r) as DeadLetter);
  }

  async takeDead(appId: string): Promise<DeadLetter[]> {
    const key = this.o.keys.webhookDead(appId);
    const res = await this.redis.multi().lrange(key, 0, -1).del(key).exec();
    const rows = (res?.[0]?.[1] as string[] | undefined) ?? [];
    return rows.reverse().map((r) => JSON.parse(r) as DeadLetter);
  }

  async start(queues: readonly string[]): Promise<void> {
    this.setQueues(queues);
    this.started = true;
    this.sub.on('message', (channel: string, msg: string) => {
      if (channel !== this.bell || this.closed) return;
      for (const q of msg.split('\n')) {
        if (!this.queues.has(q)) continue;
        if (this.owns(q)) this.wake(q);
        else if (Date.now() - this.lastTick > 250) void this.tick(); // a lease released or expired? take it now
      }
    });
    await this.sub.subscribe(this.bell).catch((err) => this.o.log.warn({ err }, 'webhook doorbell not subscribed yet'));
    // Renews the delivery leases (three times per lease), and takes over a dead owner's streams within
    // a third of a lease of its lease running out; a missed doorbell costs as much at most.
    const every = Math.max(100, Math.floor(this.deliveryLeaseMs / 3));
    this.timer = setInterval(() => void this.tick(), every);
    this.timer.unref();
    await this.tick();
  }

  setQueues(queues: readonly string[]): void {
    const next = new Set(queues);
    for (const q of this.queues) {
      if (next.has(q)) continue;
      this.owned.delete(q);
      this.lengths.delete(q);
      this.releasing.add(q);
    }
    for (const q of next) this.releasing.delete(q);
    this.queues = next;
    if (this.started) void this.tick();
  }

  /** Runs claim rounds until none is asked for (a set changed meanwhile). */
  private async tick(): Promise<void> {
    if (this.ticking) {
      this.tickAgain = true;
      return;
    }
    if (this.closed || this.redis.status !== 'ready') return;
    // Without a valid lease of its own a node must not claim: others could not tell it is alive.
    if (!this.o.lease.held()) return;
    this.ticking = true;
    try {
      do {
        this.tickAgain = false;
        this.lastTick = Date.now();
        await this.round();
      } while (this.tickAgain && !this.closed);
    } catch (err) {
      this.o.log.debug({ err }, 'webhook claim round failed');
    } finally {
      this.ticking = false;
    }
  }

  /**
   * Releases the streams taken out of the set (ringing the doorbell, so the nodes that deliver them
   * take them at once), claims the streams of the set this node owns or may take over, refreshes their
   * lengths, and wakes what has work.
   */
  private async round(): Promise<void> {
    const queues = [...this.queues];
    const release = [...this.releasing];
    if (!queues.length && !release.length) return;
    const k = this.o.keys;
    const me = this.o.lease.nodeId;
    const now = Date.now();
    const settling = this.o.lease.settling(now);
    if (!settling) this.ownedBeforeOutage.clear();
    const p = this.redis.pipeline() as unknown as Scripted;
    for (const q of release) p.webhookRelease(k.webhookOwner(q), me);
    if (release.length) p.publish(this.bell, release.join('\n'));
    for (const q of queues) {
      const takeOver = !settling || this.ownedBeforeOutage.has(q) ? 1 : 0;
      p.webhookClaim(k.webhookOwner(q), k.nodes, me, now, this.deliveryLeaseMs, takeOver);
      p.xlen(k.webhookStream(q));
    }
    const res = (await (p as unknown as ReturnType<Redis['pipeline']>).exec()) ?? [];
    release.forEach((q, i) => {
      if (res[i] && !res[i][0]) this.releasing.delete(q);
    });
    const claims = release.length ? release.length + 1 : 0;
    queues.forEach((q, i) => {
      // Taken out of the set meanwhile: not owned here, and released at the next round.
      if (!this.queues.has(q)) return;
      const [claimErr, claimed] = res[claims + 2 * i] ?? [new Error('no reply')];
      const [lenErr, len] = res[claims + 2 * i + 1] ?? [new Error('no reply')];
      if (!lenErr) this.lengths.set(q, Number(len));
      if (claimErr) return;
      // Stop delivering a little before the lease can run out in Redis (measured from before the claim).
      if (Number(claimed) === 1) this.owned.set(q, now + Math.floor(this.deliveryLeaseMs * 0.8));
      else this.owned.delete(q);
      if (this.owns(q) && Number(len) > 0) this.wake(q);
    });
  }

  async close(): Promise<void> {
    // Write what is still local (bounded wait), then hand our streams to the other nodes at once.
    await Promise.race([this.flushing ?? Promise.resolve(), new Promise((r) => setTimeout(r, 2000))]);
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    const held = [...new Set([...this.owned.keys(), ...this.releasing])];
    this.owned.clear();
    if (this.backlog.length) this.o.log.error({ lost: this.backlog.length }, 'webhook events never reached Redis before shutdown');
    if (this.redis.status === 'ready' && held.length) {
      const p = this.redis.pipeline();
      for (const q of held) (p as unknown as Scripted).webhookRelease(this.o.keys.webhookOwner(q), this.o.lease.nodeId);
      p.publish(this.bell, held.join('\n'));
      await p.exec().catch(() => undefined);
    }
    this.sub.disconnect();
  }
}
