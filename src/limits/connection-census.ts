// Connections per app, counted exactly across the cluster for apps with a maxConnections quota
// (close 4004 over it, spec §2). In Redis the check and the count are one atomic step, so two nodes
// admitting at once can never pass the quota together, and a closed connection frees its place at
// once. Each node's share is its own (per-node hash), removed with the node lease when it dies.
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { App } from '../apps/app.js';
import { leaseLua, type NodeShare } from '../cluster/node-lease.js';
import { defineScripts, type Scripted } from '../redis/clients.js';
import type { RedisKeys } from '../redis/keys.js';

/** Only apps with a quota (maxConnections >= 0) are counted; others are always admitted. */
export interface ConnectionCensus {
  /** Counts one more connection of the app if that keeps it within its quota; false: refuse it. */
  admit(app: App): Promise<boolean>;
  /** One admitted connection of the app closed. */
  release(app: App): void;
  /** The quota app's connections cluster-wide (GET usage); undefined for an app without a quota. */
  connections(app: App): Promise<number | undefined>;
}

export class MemoryConnectionCensus implements ConnectionCensus {
  private counts = new Map<string, number>();

  async admit(app: App): Promise<boolean> {
    if (app.maxConnections < 0) return true;
    const n = this.counts.get(app.id) ?? 0;
    if (n >= app.maxConnections) return false;
    this.counts.set(app.id, n + 1);
    return true;
  }

  release(app: App): void {
    if (app.maxConnections < 0) return;
    const n = (this.counts.get(app.id) ?? 1) - 1;
    if (n > 0) this.counts.set(app.id, n);
    else this.counts.delete(app.id);
  }

  async connections(app: App): Promise<number | undefined> {
    return app.maxConnections < 0 ? undefined : (this.counts.get(app.id) ?? 0);
  }
}

// KEYS of every script: the cluster-wide hash (app → connections, RedisKeys.connections) and one
// node's own (RedisKeys.nodeConnections); censusDropNode also reads the leases (RedisKeys.nodes).
const lib = `
local function drop(all, mine)
  local h = redis.call('HGETALL', mine)
  for i = 1, #h, 2 do
    if redis.call('HINCRBY', all, h[i], -tonumber(h[i + 1])) <= 0 then redis.call('HDEL', all, h[i]) end
  end
  redis.call('DEL', mine)
end
`;

const scripts = {
  // KEYS: all mine. ARGV: app limit → the app's count after admitting, or -1 when at the quota
  censusAdmit: {
    keys: 2,
    lua: `
if tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0') >= tonumber(ARGV[2]) then return -1 end
redis.call('HINCRBY', KEYS[2], ARGV[1], 1)
return redis.call('HINCRBY', KEYS[1], ARGV[1], 1)`,
  },
  // KEYS: all mine. ARGV: app
  censusRelease: {
    keys: 2,
    lua: `
local mine = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')
if mine <= 0 then return 0 end
if mine == 1 then redis.call('HDEL', KEYS[2], ARGV[1]) else redis.call('HINCRBY', KEYS[2], ARGV[1], -1) end
if redis.call('HINCRBY', KEYS[1], ARGV[1], -1) <= 0 then redis.call('HDEL', KEYS[1], ARGV[1]) end
return 1`,
  },
  // KEYS: all theirs nodes. ARGV: node now → removes a node's share unless its lease is still valid
  censusDropNode: {
    keys: 3,
    lua: `${lib}${leaseLua}
if leaseValid(KEYS[3], ARGV[1], ARGV[2]) then return 0 end
drop(KEYS[1], KEYS[2])
return 1`,
  },
  // KEYS: all mine. ARGV: (app count)* → replaces this node's share with its own record
  censusReplay: {
    keys: 2,
    lua: `${lib}
drop(KEYS[1], KEYS[2])
for i = 1, #ARGV, 2 do
  redis.call('HINCRBY', KEYS[2], ARGV[i], ARGV[i + 1])
  redis.call('HINCRBY', KEYS[1], ARGV[i], ARGV[i + 1])
end
return 1`,
  },
};

export interface RedisCensusOptions {
  redis: Redis;
  keys: RedisKeys;
  nodeId: string;
  log: Logger;
}

export class RedisConnectionCensus implements ConnectionCensus, NodeShare {
  private readonly r: Scripted;
  /** this node's admitted connections per app (quota apps only) */
  private mine = new Map<string, number>();
  /** the other nodes' connections per app, as last seen (used while Redis is unreachable) */
  private others = new Map<string, number>();
  /** this node's hash */
  private readonly mineKey: string;

  constructor(private readonly o: RedisCensusOptions) {
    this.r = defineScripts(o.redis, scripts);
    this.mineKey = o.keys.nodeConnections(o.nodeId);
  }

  private bump(appId: string, delta: 1 | -1): void {
    const n = (this.mine.get(appId) ?? 0) + delta;
    if (n > 0) this.mine.set(appId, n);
    else this.mine.delete(appId);
  }

  async admit(app: App): Promise<boolean> {
    if (app.maxConnections < 0) return true; // not counted: nothing to enforce
    try {
      const total = Number(await this.r.censusAdmit(this.o.keys.connections, this.mineKey, app.id, app.maxConnections));
      if (total < 0) return false;
      this.bump(app.id, 1);
      this.others.set(app.id, total - (this.mine.get(app.id) ?? 0));
      return true;
    } catch (err) {
      // Redis unreachable: decide on the last known count; the share is written again on reconnect.
      this.o.log.debug({ err }, 'connection census unavailable, using the last known count');
      if ((this.mine.get(app.id) ?? 0) + (this.others.get(app.id) ?? 0) >= app.maxConnections) return false;
      this.bump(app.id, 1);
      return true;
    }
  }

  release(app: App): void {
    if (app.maxConnections < 0) return;
    this.bump(app.id, -1);
    this.r.censusRelease(this.o.keys.connections, this.mineKey, app.id).catch(() => {}); // a reconnect replays the share
  }

  async connections(app: App): Promise<number | undefined> {
    if (app.maxConnections < 0) return undefined;
    return Number((await this.o.redis.hget(this.o.keys.connections, app.id)) ?? 0);
  }

  async rejoin(): Promise<void> {
    const args: (string | number)[] = [this.o.keys.connections, this.mineKey];
    for (const [app, n] of this.mine) args.push(app, n);
    await this.r.censusReplay(...args);
  }

  async dropNode(node: string, now: number): Promise<void> {
    await this.r.censusDropNode(this.o.keys.connections, this.o.keys.nodeConnections(node), this.o.keys.nodes, node, now);
  }
}
