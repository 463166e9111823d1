// One liveness mechanism for the whole cluster: every node holds a lease in one sorted set
// (`RedisKeys.nodes`, node id → expiry in ms) and renews it every quarter of its length. What a node
// keeps in Redis on its own behalf (presence share, connection census, webhook queue ownership)
// belongs to a NodeShare, which this module asks to write its share again when the node's
// registration was lost or its connection dropped, and to remove a dead node's share once that
// node's lease has run out. After a reconnect both wait until every node had time to reconnect.
//
// Redis losing its data (a restart without persistence) is told apart from a lost registration by
// `RedisKeys.dataset`, a random id the first node to renew after the loss writes. A node that sees the
// id change first has its shares write back what Redis held (restore, announcing nothing) and marks
// itself in `RedisKeys.restored`; a node that holds its share as the dataset should (it never saw
// another dataset, or it restored) is marked at every renewal. It then waits before it rejoins: until
// every live node reconnected (reconnectGraceMs) and every node it knew before the loss or sees
// registered now is marked (or a lease time has passed: the missing ones are dead). So when the first
// node compares its share with the others' (rejoin), theirs are there again, and only real changes
// are announced.
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { defineScripts, type Scripted } from '../redis/clients.js';
import type { RedisKeys } from '../redis/keys.js';

/** State a node keeps in Redis on its own behalf. */
export interface NodeShare {
  /**
   * Removes `node`'s share if its lease ran out before `now` (the check and the removal are one atomic
   * step, so a node that renewed in time keeps its share, and two survivors never both remove it).
   */
  dropNode(node: string, now: number): Promise<void>;
  /** Writes this node's own share again as it is now (reporting what that changes). */
  rejoin(): Promise<void>;
  /** Redis lost its data: writes back this node's share as Redis last held it, reporting nothing. */
  restore?(): Promise<void>;
}

/** Work owned by a node that others take over when it dies (webhook queues). */
export interface NodeWatcher {
  /** Another node's lease ran out and its shares are gone. */
  nodeGone(node: string): void;
}

/**
 * Lua for every script that asks whether a node's lease still runs (this module's, the census's, the
 * presence store's and the webhook queues'): `leaseValid(nodesKey, node, now)`, nodesKey being
 * RedisKeys.nodes among the script's keys.
 */
export const leaseLua = `
local function leaseValid(nodesKey, node, now)
  local s = redis.call('ZSCORE', nodesKey, node)
  return s ~= false and tonumber(s) > tonumber(now)
end
`;

const scripts = {
  // KEYS: dataset restored nodes. ARGV: me now expiry newDataset knownDataset holdsShare → { 1 when
  // this node was not registered or its lease had run out, else 0; the dataset id (newDataset if there
  // was none); the nodes whose lease is valid }. holdsShare 1: this node's shares are as Redis should
  // hold them (mark it, unless the dataset is not the one it knows).
  leaseRenew: {
    keys: 3,
    lua: `${leaseLua}
local d = redis.call('GET', KEYS[1])
if not d then
  d = ARGV[4]
  redis.call('SET', KEYS[1], d)
end
if ARGV[6] == '1' and (ARGV[5] == '' or ARGV[5] == d) then redis.call('SADD', KEYS[2], ARGV[1]) end
local lost = leaseValid(KEYS[3], ARGV[1], ARGV[2]) and 0 or 1
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[1])
local out = { lost, d }
for _, n in ipairs(redis.call('ZRANGEBYSCORE', KEYS[3], '(' .. ARGV[2], '+inf')) do table.insert(out, n) end
return out`,
  },
  // KEYS: nodes. ARGV: node now → removes the node's entry unless it renewed meanwhile.
  leaseForget: {
    keys: 1,
    lua: `${leaseLua}
if not leaseValid(KEYS[1], ARGV[1], ARGV[2]) then redis.call('ZREM', KEYS[1], ARGV[1]) end
return 1`,
  },
};

/** While waiting for other nodes to restore, look again this often rather than at the next renewal. */
const RESTORE_POLL_MS = 100;

export interface NodeLeaseOptions {
  redis: Redis;
  keys: RedisKeys;
  nodeId: string;
  /** How long a lease lasts without renewal: a crashed node's share is removed after about this. */
  leaseMs: number;
  /** Every live node's connection is back within this of Redis coming back (its longest reconnect delay and some). */
  reconnectGraceMs: number;
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
  /** The dataset id at the last renewal (undefined before the first). */
  private dataset?: string;
  /** The other nodes alive at the last renewal. */
  private peers: string[] = [];
  /** The connection was up once (a later 'ready' is a reconnect). */
  private connected = false;
  /** When the connection last came back after being lost (0: never). */
  private backAt = 0;
  /** Redis lost its data: this node restores, then waits for `peers` (alive before the loss) to. */
  private restoring?: { peers: string[]; since: number; restored: boolean };

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
    // Every (re)connect: writes may have failed meanwhile, or Redis restarted.
    this.o.redis.on('ready', () => {
      if (this.connected) this.backAt = Date.now();
      this.connected = true;
      this.rejoinSoon();
    });
    this.connected = this.o.redis.status === 'ready';
    this.timer = setInterval(() => void this.tick(), Math.max(100, Math.floor(this.o.leaseMs / 4)));
    this.timer.unref();
    if (this.o.redis.status === 'ready') await this.tick();
  }

  /**
   * True for a moment after this node's Redis connection came back: every node is reconnecting, and
   * leases that ran out meanwhile (the webhook queues' delivery leases among them) say nothing about
   * who is alive.
   */
  settling(now = Date.now()): boolean {
    return now < this.backAt + this.o.reconnectGraceMs;
  }

  /** True while this node's lease is known to be valid (it may act as the owner of shared work). */
  held(now = Date.now()): boolean {
    return !this.stopped && now < this.validUntil;
  }

  /** A share may differ from what Redis holds (a reconnect, a failed write): write them again now. */
  rejoinSoon(): void {
    this.rejoinDue = true;
    void this.tick();
  }

  private async tick(): Promise<void> {
    if (this.stopped || this.ticking || this.o.redis.status !== 'ready') return;
    this.ticking = true;
    try {
      const now = Date.now();
      const holds = !this.restoring || this.restoring.restored ? 1 : 0;
      const [lost, dataset, ...live] = (await this.r.leaseRenew(this.o.keys.dataset, this.o.keys.restored, this.o.keys.nodes, this.o.nodeId, now, now + this.o.leaseMs, randomUUID(), this.dataset ?? '', holds)) as [
        number,
        string,
        ...string[],
      ];
      // Stop acting as an owner a little before the lease can run out in Redis.
      this.validUntil = now + Math.floor(this.o.leaseMs * 0.8);
      if (Number(lost) === 1) this.rejoinDue = true;
      if (this.dataset !== undefined && dataset !== this.dataset) {
        this.o.log.warn('Redis lost the cluster state: restoring it from every node before replaying what changed');
        this.restoring = { peers: this.restoring?.peers ?? this.peers, since: now, restored: false };
      }
      this.dataset = dataset;
      if (!this.restoring) this.peers = live.filter((n) => n !== this.o.nodeId);
      else if (!(await this.restored(now, live))) {
        setTimeout(() => void this.tick(), RESTORE_POLL_MS).unref();
        return;
      }
      // After a reconnect the other nodes are coming back too: their leases may have run out while
      // Redis was unreachable, and their changes are about to be replayed. Rejoining (and removing
      // "dead" nodes) only once they all had time to reconnect announces each change once, without
      // removing members of a node that is merely reconnecting, and not before their frames can
      // reach every node (the backbone holds its outbox as long).
      const settle = this.backAt + this.o.reconnectGraceMs - now;
      if (settle > 0) {
        setTimeout(() => void this.tick(), settle).unref();
        return;
      }
      if (this.rejoinDue) {
        this.rejoinDue = false;
        if (!(await this.rejoinAll())) this.rejoinDue = true;
      }
      await this.removeExpired(now);
    } catch (err) {
      // A renewal cut off by a Redis outage is the outage's news (redis/outage-log.ts), not a warning of its own.
      if (this.o.redis.status === 'ready') this.o.log.warn({ err }, 'node lease renewal failed');
      else this.o.log.debug({ err }, 'node lease renewal failed: Redis unreachable');
    } finally {
      this.ticking = false;
    }
  }

  /**
   * Restores this node's shares once, then tells whether the others have: every node it knew before
   * Redis lost its data and every node registered now (`live`), once every live node has had time to
   * reconnect. A node missing after a lease time is dead: its share went with Redis.
   */
  private async restored(now: number, live: string[]): Promise<boolean> {
    const r = this.restoring!;
    const key = this.o.keys.restored;
    if (!r.restored) {
      for (const s of this.shares) await s.restore?.();
      await this.o.redis.sadd(key, this.o.nodeId);
      r.restored = true;
    }
    const waited = now - r.since;
    const others = [...new Set([...r.peers, ...live])].filter((n) => n !== this.o.nodeId);
    const restored = new Set(others.length ? await this.o.redis.smembers(key) : []);
    const missing = others.filter((n) => !restored.has(n));
    if (waited < this.o.leaseMs && (waited < this.o.reconnectGraceMs || missing.length)) return false;
    if (missing.length) this.o.log.warn({ missing }, 'nodes did not restore their share of the cluster state within a lease: taken for dead');
    this.restoring = undefined;
    return true;
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
    const expired = await this.o.redis.zrangebyscore(this.o.keys.nodes, '-inf', now);
    for (const node of expired) {
      if (node === this.o.nodeId) continue;
      // Every share goes before the entry, so a survivor that fails halfway leaves the rest to the next.
      for (const s of this.shares) await s.dropNode(node, now);
      await this.r.leaseForget(this.o.keys.nodes, node, now);
      this.o.log.info({ node }, 'removed the state of a dead node');
      for (const w of this.watchers) w.nodeGone(node);
    }
  }

  /** Leaves the cluster now (graceful stop): the entry goes first, then every share of this node. */
  async leave(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    try {
      await this.o.redis.zrem(this.o.keys.nodes, this.o.nodeId);
      const now = Date.now();
      for (const s of this.shares) await s.dropNode(this.o.nodeId, now);
    } catch (err) {
      this.o.log.warn({ err }, 'could not remove this node from the cluster state; its lease will run out');
    }
  }
}
