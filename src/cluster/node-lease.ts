// One liveness mechanism for the whole cluster: every node holds a lease in one sorted set
// (`<prefix>:nodes`, node id → expiry in ms) and renews it every quarter of its length. What a node
// keeps in Redis on its own behalf (presence share, connection census, webhook queue ownership)
// belongs to a NodeShare, which this module asks to write its share again when the node's
// registration was lost, and to remove a dead node's share once that node's lease has run out.
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { defineScripts, type Scripted } from '../redis/clients.js';

/** State a node keeps in Redis on its own behalf. */
export interface NodeShare {
  /**
   * Removes `node`'s share if its lease ran out before `now` (the check and the removal are one atomic
   * step, so a node that renewed in time keeps its share, and two survivors never both remove it).
   */
  dropNode(node: string, now: number): Promise<void>;
  /** Writes this node's own share again (Redis restarted empty, or the node was taken for dead). */
  rejoin(): Promise<void>;
}

/** Work owned by a node that others take over when it dies (webhook queues). */
export interface NodeWatcher {
  /** Another node's lease ran out and its shares are gone. */
  nodeGone(node: string): void;
}

const scripts = {
  // ARGV: P me now expiry → 1 when this node was not registered, or its lease had run out.
  leaseRenew: `
local s = redis.call('ZSCORE', ARGV[1] .. ':nodes', ARGV[2])
redis.call('ZADD', ARGV[1] .. ':nodes', ARGV[4], ARGV[2])
if not s or tonumber(s) <= tonumber(ARGV[3]) then return 1 end
return 0`,
  // ARGV: P node now → removes the node's entry unless it renewed meanwhile.
  leaseForget: `
local s = redis.call('ZSCORE', ARGV[1] .. ':nodes', ARGV[2])
if s and tonumber(s) <= tonumber(ARGV[3]) then redis.call('ZREM', ARGV[1] .. ':nodes', ARGV[2]) end
return 1`,
};

export interface NodeLeaseOptions {
  redis: Redis;
  prefix: string;
  nodeId: string;
  /** How long a lease lasts without renewal: a crashed node's share is removed after about this. */
  leaseMs: number;
  log: Logger;
}

export class NodeLease {
  private readonly r: Scripted;
  private readonly shares: NodeShare[] = [];
  private readonly watchers: NodeWatcher[] = [];
  private timer?: NodeJS.Timeout;
  private ticking = false;
  /** A rejoin is due: first start, every reconnect, a lost registration, or a failed rejoin. */
  private rejoinDue = true;
  private stopped = false;
  /** Local time until which this node's lease is surely valid in Redis. */
  private validUntil = 0;

  constructor(private readonly o: NodeLeaseOptions) {
    this.r = defineScripts(o.redis, scripts);
  }

  get nodeId(): string {
    return this.o.nodeId;
  }

  get leaseMs(): number {
    return this.o.leaseMs;
  }

  /** Registers a share; call before start(). */
  add(share: NodeShare): void {
    this.shares.push(share);
  }

  watch(watcher: NodeWatcher): void {
    this.watchers.push(watcher);
  }

  /** Starts renewing; resolves after the first renewal when Redis is reachable now. */
  async start(): Promise<void> {
    // Every (re)connect: the connection may have been lost with writes in flight, or Redis restarted.
    this.o.redis.on('ready', () => {
      this.rejoinDue = true;
      void this.tick();
    });
    this.timer = setInterval(() => void this.tick(), Math.max(100, Math.floor(this.o.leaseMs / 4)));
    this.timer.unref();
    if (this.o.redis.status === 'ready') await this.tick();
  }

  /** True while this node's lease is known to be valid (it may act as the owner of shared work). */
  held(now = Date.now()): boolean {
    return !this.stopped && now < this.validUntil;
  }

  private async tick(): Promise<void> {
    if (this.stopped || this.ticking || this.o.redis.status !== 'ready') return;
    this.ticking = true;
    try {
      const now = Date.now();
      const lost = Number(await this.r.leaseRenew(this.o.prefix, this.o.nodeId, now, now + this.o.leaseMs)) === 1;
      // Stop acting as an owner a little before the lease can run out in Redis.
      this.validUntil = now + Math.floor(this.o.leaseMs * 0.8);
      if (lost) this.rejoinDue = true;
      if (this.rejoinDue) {
        this.rejoinDue = false;
        if (!(await this.rejoinAll())) this.rejoinDue = true;
      }
      await this.removeExpired(now);
    } catch (err) {
      this.o.log.warn({ err }, 'node lease renewal failed');
    } finally {
      this.ticking = false;
    }
  }

  /** True when every share was written. */
  private async rejoinAll(): Promise<boolean> {
    let ok = true;
    for (const s of this.shares) {
      try {
        await s.rejoin();
      } catch (err) {
        ok = false;
        this.o.log.warn({ err }, 'cluster state not registered yet');
      }
    }
    return ok;
  }

  private async removeExpired(now: number): Promise<void> {
    const expired = await this.o.redis.zrangebyscore(`${this.o.prefix}:nodes`, '-inf', now);
    for (const node of expired) {
      if (node === this.o.nodeId) continue;
      // Every share goes before the entry, so a survivor that fails halfway leaves the rest to the next.
      for (const s of this.shares) await s.dropNode(node, now);
      await this.r.leaseForget(this.o.prefix, node, now);
      this.o.log.info({ node }, 'removed the state of a dead node');
      for (const w of this.watchers) w.nodeGone(node);
    }
  }

  /** Leaves the cluster now (graceful stop): the entry goes first, then every share of this node. */
  async leave(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    try {
      await this.o.redis.zrem(`${this.o.prefix}:nodes`, this.o.nodeId);
      const now = Date.now();
      for (const s of this.shares) await s.dropNode(this.o.nodeId, now);
    } catch (err) {
      this.o.log.warn({ err }, 'could not remove this node from the cluster state; its lease will run out');
    }
  }
}
