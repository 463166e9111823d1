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
import { DEAD_LETTERS_KEPT_PER_APP, type DeadLetter, type QueuedEvent, type WebhookQueue } from './queue.js';

export interface RedisWebhookQueueOptions {
  redis: Redis;
  /** A connection of its own for the doorbell channel (it enters subscriber mode). */
  subscriber: Redis;
  prefix: string;
  /** This node's lease: a stream's owner delivers only while its lease holds, and loses the stream when it runs out. */
  lease: NodeLease;
  log: Logger;
}

/**
 * How long a stream's delivery lease lasts (never longer than the node lease): the longest its webhooks
 * wait when the node delivering them dies.
 */
export const DELIVERY_LEASE_MS = 2000;

const scripts = {
  // ARGV: ownerKey P me now ms takeOver → 1 when this node owns the stream for the next ms (it did, or,
  // with takeOver 1, the owner's delivery lease ran out, or its node lease did). Only a node whose own
  // node lease is in Redis may own one: after Redis lost its data, a node that has not registered
  // again could otherwise take a stream that a registered node holds.
  webhookClaim: `${leaseLua}
if not leaseValid(ARGV[2], ARGV[3], ARGV[4]) then return 0 end
local o = redis.call('GET', ARGV[1])
if o ~= ARGV[3] and (ARGV[6] ~= '1' or (o and leaseValid(ARGV[2], o, ARGV[4]))) then return 0 end
redis.call('SET', ARGV[1], ARGV[3], 'PX', ARGV[5])
return 1`,
  // ARGV: ownerKey me → gives the stream up if this node owns it
  webhookRelease: `if redis.call('GET', ARGV[1]) == ARGV[2] then return redis.call('DEL', ARGV[1]) end return 0`,
};
/**
 * Where the queues live in Redis, for writers outside this module: the presence scripts queue the
 * webhooks of the transitions they make in the same atomic step (a record is {t, ev} JSON in field d).
 */
export function webhookKeys(prefix: string): { streamPrefix: string; bell: string } {
  return { streamPrefix: `${prefix}:wh:q:`, bell: `${prefix}:wh:bell` };
}

const MAX_LOCAL_BACKLOG = 200_000;
const FLUSH_BATCH = 500;

export class RedisWebhookQueue implements WebhookQueue, NodeWatcher {
  private readonly redis: Scripted;
  private readonly sub: Redis;
  private readonly bell: string;
  private readonly streamPrefix: string;
  private queues: readonly string[] = [];
  private readonly known = new Set<string>();
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
  private ticking = false;
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
    ({ streamPrefix: this.streamPrefix, bell: this.bell } = webhookKeys(o.prefix));
  }

  private streamKey(q: string) {
    return this.streamPrefix + q;
  }
  private ownerKey(q: string) {
    return `${this.o.prefix}:wh:owner:${q}`;
  }
  private deadKey(appId: string) {
    return `${this.o.prefix}:wh:dead:${appId}`;
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
      for (const b of batch) p.xadd(this.streamKey(b.queue), '*', 'd', b.data);
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
    const rows = (await this.redis.xrange(this.streamKey(queue), '-', '+', 'COUNT', max)) as [string, string[]][];
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
    await this.redis.xdel(this.streamKey(queue), ...ids);
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
    const key = this.deadKey(rec.appId);
    await this.redis.multi().lpush(key, JSON.stringify(rec)).ltrim(key, 0, DEAD_LETTERS_KEPT_PER_APP - 1).exec();
  }

  async listDead(appId: string): Promise<DeadLetter[]> {
    const rows = await this.redis.lrange(this.deadKey(appId), 0, -1);
    return rows.reverse().map((r) => JSON.parse(r) as DeadLetter);
  }

  async takeDead(appId: string): Promise<DeadLetter[]> {
    const key = this.deadKey(appId);
    const res = await this.redis.multi().lrange(key, 0, -1).del(key).exec();
    const rows = (res?.[0]?.[1] as string[] | undefined) ?? [];
    return rows.reverse().map((r) => JSON.parse(r) as DeadLetter);
  }

  async start(queues: readonly string[]): Promise<void> {
    this.queues = queues;
    for (const q of queues) this.known.add(q);
    this.sub.on('message', (channel: string, msg: string) => {
      if (channel !== this.bell || this.closed) return;
      for (const q of msg.split('\n')) {
        if (!this.known.has(q)) continue;
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

  /** Claims the streams this node owns or may take over, refreshes queue lengths, and wakes what has work. */
  private async tick(): Promise<void> {
    if (this.ticking || this.closed || this.redis.status !== 'ready') return;
    // Without a valid lease of its own a node must not claim: others could not tell it is alive.
    if (!this.o.lease.held()) return;
    this.ticking = true;
    this.lastTick = Date.now();
    try {
      const p = this.redis.pipeline() as unknown as Scripted;
      const now = Date.now();
      const settling = this.o.lease.settling(now);
      if (!settling) this.ownedBeforeOutage.clear();
      for (const q of this.queues) {
        const takeOver = !settling || this.ownedBeforeOutage.has(q) ? 1 : 0;
        p.webhookClaim(this.ownerKey(q), this.o.prefix, this.o.lease.nodeId, now, this.deliveryLeaseMs, takeOver);
        p.xlen(this.streamKey(q));
      }
      const res = (await (p as unknown as ReturnType<Redis['pipeline']>).exec()) ?? [];
      this.queues.forEach((q, i) => {
        const [claimErr, claimed] = res[2 * i] ?? [new Error('no reply')];
        const [lenErr, len] = res[2 * i + 1] ?? [new Error('no reply')];
        if (!lenErr) this.lengths.set(q, Number(len));
        if (claimErr) return;
        // Stop delivering a little before the lease can run out in Redis (measured from before the claim).
        if (Number(claimed) === 1) this.owned.set(q, now + Math.floor(this.deliveryLeaseMs * 0.8));
        else this.owned.delete(q);
        if (this.owns(q) && Number(len) > 0) this.wake(q);
      });
    } catch (err) {
      this.o.log.debug({ err }, 'webhook claim round failed');
    } finally {
      this.ticking = false;
    }
  }

  async close(): Promise<void> {
    // Write what is still local (bounded wait), then hand our streams to the other nodes at once.
    await Promise.race([this.flushing ?? Promise.resolve(), new Promise((r) => setTimeout(r, 2000))]);
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    const held = [...this.owned.keys()];
    this.owned.clear();
    if (this.backlog.length) this.o.log.error({ lost: this.backlog.length }, 'webhook events never reached Redis before shutdown');
    if (this.redis.status === 'ready' && held.length) {
      const p = this.redis.pipeline();
      for (const q of held) (p as unknown as Scripted).webhookRelease(this.ownerKey(q), this.o.lease.nodeId);
      p.publish(this.bell, held.join('\n'));
      await p.exec().catch(() => undefined);
    }
    this.sub.disconnect();
  }
}
