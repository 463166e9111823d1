// Whether what other nodes publish reaches this node: the state of the Redis backbone's subscriber
// connection. When it closes (a network blip, a failover, Redis closing it at its pub/sub output
// buffer limit), everything published until it has subscribed again is lost to this node; ioredis
// subscribes again by itself (autoResubscribe). This tells the node where such a break begins and
// ends, numbers the unbroken stretches in between, and gives message recovery its ordering barrier.
//
// On Redis Cluster the subscriber is a set of sharded connections, one per primary (ioredis
// `shardedSubscribers`), seen through shardFeed below: a shard's subscriber ending (its primary
// failed or was removed) or Redis dropping this node's shard channels of a slot that moved (the
// unsolicited SUNSUBSCRIBE of a slot migration) is a break of the whole feed, and it is back once
// ioredis has read the new slot map and subscribed every channel again on the new owners.
import { EventEmitter } from 'node:events';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { FeedHandler } from './backbone.js';

/** What the feed watches: 'close' when what was subscribed may be lost, 'ready' once it is subscribed again; a PING in line with the messages. */
export interface FeedConnection {
  on(event: 'close' | 'ready', listener: () => void): unknown;
  ping(): Promise<unknown>;
}

/** ioredis 5.11's sharded subscriber group (private: the version is pinned, docs/redis-cluster.md). */
interface ShardGroup {
  shardedSubscribers: Map<string, { getInstance(): Redis | null }>;
  /** slot → [primary's node key, replicas...], as the group last read it */
  clusterSlots: string[][];
  /** slot → the shard channels subscribed in it */
  channels: Map<number, string[]>;
}

/** While broken: how often the slot map is read again and the subscribers looked at. */
const HEALTH_POLL_MS = 100;

/**
 * How long the feed's PING may take before it is given up (and, when it was to end a break, sent
 * again): ioredis 5.11 can lose it on a sharded subscriber connection that Redis dropped channels of, or
 * that its subscriber group replaced, so that it never settles. Long enough for a backlog of messages.
 */
const PING_TIMEOUT_MS = 3000;
const PING_RETRY_MS = 100;

/** A PING's own answer: 'PONG', or ['pong', ''] on a connection in subscriber mode. */
function isPong(reply: unknown): boolean {
  const first = Array.isArray(reply) ? reply[0] : reply;
  return String(first).toLowerCase() === 'pong';
}

/** `p`, or a rejection when it has not settled within `ms`. */
export function withinTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
    p.then(
      (v) => (clearTimeout(timer), resolve(v)),
      (e) => (clearTimeout(timer), reject(e)),
    );
  });
}

/**
 * A Redis Cluster subscriber (shardedSubscribers) as a FeedConnection.
 *
 * Broken: a shard's subscriber connection ended (its primary failed, or left the slot map) or Redis
 * dropped its shard channels (slot migration). Back: only once every slot with a channel of this node
 * is served, in the slot map, by a subscriber connection that is up; then every such channel is
 * subscribed again on it (SSUBSCRIBE is idempotent) before 'ready', so the feed's PING comes back after
 * all of them. ioredis announces a new subscriber set ('subscribersReady') also while a dead primary
 * is still in the slot map; that alone is not taken for "back", and a timer looks again meanwhile.
 * The PING goes down every shard's subscriber connection: once all have answered, every message sent
 * to this node before is in.
 */
export function shardFeed(sub: Redis): FeedConnection {
  const signals = new EventEmitter();
  const group = () => (sub as unknown as { shardedSubscribers?: ShardGroup }).shardedSubscribers;
  let broken = false;
  /** Counts the breaks: a resubscribe that began before the latest one does not end it. */
  let breaks = 0;
  /** A resubscribe is on its way (one at a time). */
  let trying = false;
  let poll: NodeJS.Timeout | undefined;
  // Read the slot map now rather than at the next timed refresh, and again while broken: the node
  // asked may not know the new owner yet (it learns it from the cluster bus), and a map that did not
  // change subscribes nothing again.
  const refresh = () => (sub as unknown as { refreshSlotsCache(cb?: () => void): void }).refreshSlotsCache(() => {});
  const broke = () => {
    breaks++;
    if (!broken) {
      refresh();
      broken = true;
      poll = setInterval(() => {
        refresh();
        tryBack();
      }, HEALTH_POLL_MS);
      poll.unref();
    }
    signals.emit('close');
  };
  const tryBack = () => {
    const g = group();
    if (!broken || !g || trying) return;
    // One SSUBSCRIBE per slot: Redis refuses one naming channels of two slots (CROSSSLOT).
    const bySlot: [Redis, string[]][] = [];
    for (const [slot, channels] of g.channels) {
      if (!channels.length) continue;
      const owner = g.clusterSlots[slot]?.[0];
      const conn = owner === undefined ? null : (g.shardedSubscribers.get(owner)?.getInstance() ?? null);
      if (!conn || conn.status !== 'ready') return;
      bySlot.push([conn, channels]);
    }
    // Back only once every channel's SSUBSCRIBE was taken: one sent by a slot map that is already out of
    // date (the slot moved again, or the group has not read the move yet) is refused with MOVED, and the
    // channel would stay unsubscribed until ioredis's next slot refresh, silently. Refused: still broken,
    // the poll reads the slot map again and tries again.
    const attempt = breaks;
    trying = true;
    withinTimeout(Promise.all(bySlot.map(([conn, channels]) => conn.ssubscribe(...channels))), PING_TIMEOUT_MS).then(
      () => {
        trying = false;
        if (!broken || attempt !== breaks) return;
        broken = false;
        clearInterval(poll);
        signals.emit('ready');
      },
      () => {
        trying = false;
        refresh();
      },
    );
  };
  // A subscriber connection of the group ended (the pool's own connections end too: not a break).
  sub.on('-node', (redis: Redis) => {
    if ([...(group()?.shardedSubscribers.values() ?? [])].some((s) => s.getInstance() === redis)) broke();
  });
  // A shard channel dropped by Redis (slot migration) reaches ioredis 5.x as a reply nobody asked for;
  // any reply left over (one that settled the wrong command before) says the same.
  sub.on('nodeError', (err: Error) => {
    if (/sunsubscribe|command queue state error/i.test(err?.message ?? '')) broke();
  });
  sub.on('subscribersReady', tryBack);
  return {
    on: (event, listener) => signals.on(event, listener),
    async ping() {
      const conns = [...(group()?.shardedSubscribers.values() ?? [])].map((s) => s.getInstance()).filter((r) => r && r.status === 'ready');
      const replies = await Promise.all(conns.map((r) => r!.ping()));
      // ioredis 5.11 hands a command first in the queue the reply of an unsolicited SUNSUBSCRIBE (a slot
      // moved) when it has one (the error event only comes when the queue is empty): the PING then
      // settles with a count, before the messages it was to follow, and a slot's channels are gone.
      if (!replies.every(isPong)) {
        broke();
        throw new Error('a shard channel was dropped while the PING was on its way');
      }
    },
  };
}

export class RedisFeed {
  /** The current unbroken stretch; every break starts a new one. */
  private stretch = 0;
  /** Set while broken: resolves once every channel is subscribed again. */
  private broken?: { done: Promise<void>; resolve: () => void; redisWasDown: boolean };
  /** A PING not sent yet, shared by the barriers asked for in the same turn. */
  private pendingBarrier?: Promise<unknown>;
  private closing = false;

  constructor(
    private readonly sub: FeedConnection,
    /** The node's command connection: lost during a break too, it was Redis (or the way to it) that went away. */
    private readonly pub: Redis,
    private readonly handler: () => FeedHandler,
    private readonly log: Logger,
  ) {
    sub.on('close', () => this.broke());
    sub.on('ready', () => this.reconnected());
    pub.on('close', () => {
      if (this.broken) this.broken.redisWasDown = true;
    });
  }

  private broke(): void {
    // 'close' comes again for each failed reconnect attempt: one break until the feed is back.
    if (this.broken || this.closing) return;
    this.stretch++;
    let resolve!: () => void;
    const done = new Promise<void>((r) => (resolve = r));
    this.broken = { done, resolve, redisWasDown: this.pub.status !== 'ready' };
    this.handler().feedBroken();
  }

  private reconnected(): void {
    const broken = this.broken;
    if (!broken) return;
    const stretch = this.stretch;
    // ioredis wrote its SUBSCRIBEs for every channel before emitting 'ready': a PING answered after
    // them means all are in force, so what is published from then on arrives.
    const attempt = () =>
      withinTimeout(this.sub.ping(), PING_TIMEOUT_MS).then(
        () => {
          if (this.stretch !== stretch || this.broken !== broken) return;
          this.broken = undefined;
          broken.resolve();
          // At debug after an outage: the outage's own log says when Redis is back.
          this.log[broken.redisWasDown ? 'debug' : 'info']('redis subscriber connection back: every channel subscribed again');
          this.handler().feedResumed(broken.redisWasDown);
        },
        // Closed again before the answer: the next 'ready' tries again. A PING lost or given up while the
        // connection stays up is sent again, or the break would never end.
        () => {
          if (this.stretch === stretch && this.broken === broken && !this.closing) setTimeout(() => this.broken === broken && attempt(), PING_RETRY_MS).unref();
        },
      );
    void attempt();
  }

  /** See Backbone.interestReady: `subscribed` is the channel's SUBSCRIBE. */
  async ready(subscribed: Promise<void> | undefined): Promise<number> {
    await subscribed;
    while (this.broken) await this.broken.done;
    return this.stretch;
  }

  /** See Backbone.caughtUp. */
  async caughtUp(stretch: number): Promise<boolean> {
    if (this.broken || stretch !== this.stretch) return false;
    try {
      await this.barrier();
    } catch {
      return false;
    }
    return !this.broken && stretch === this.stretch;
  }

  /**
   * Resolves once every message Redis sent this node before now has been received: Redis answers a
   * PING on the subscriber connection after the messages it queued there before it.
   */
  private barrier(): Promise<unknown> {
    return (this.pendingBarrier ??= Promise.resolve().then(() => {
      this.pendingBarrier = undefined;
      return withinTimeout(this.sub.ping(), PING_TIMEOUT_MS);
    }));
  }

  /** The node is stopping: its own disconnect is no break. */
  close(): void {
    this.closing = true;
  }
}
