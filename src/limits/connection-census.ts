// Connections per app, counted exactly across the cluster for apps with a maxConnections quota
// (close 4004 over it, spec §2). In Redis the check and the count are one atomic step, so two nodes
// admitting at once can never pass the quota together, and a closed connection frees its place at
// once. Each node's share is its own (per-node hash), removed with the node lease when it dies.
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { App } from '../apps/app.js';
import { leaseLua, type NodeShare } from '../cluster/node-lease.js';
import { defineScripts, type Scripted } from '../redis/clients.js';

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

// Keys: P:conns (hash app → connections cluster-wide), P:n:<node>:conns (hash app → that node's).
const lib = `
local P = ARGV[1]
local function drop(node)
  local nk = P .. ':n:' .. node .. ':conns'
  local h = redis.call('HGETALL', nk)
  for i = 1, #h, 2 do
    if redis.call('HINCRBY', P .. ':conns', h[i], -tonumber(h[i + 1])) <= 0 then redis.call('HDEL', P .. ':conns', h[i]) end
  end
  redis.call('DEL', nk)
end
`;

const scripts = {
  // ARGV: P node app limit → the app's count after admitting, or -1 when at the quota
  censusAdmit: `${lib}
if tonumber(redis.call('HGET', P .. ':conns', ARGV[3]) or '0') >= tonumber(ARGV[4]) then return -1 end
redis.call('HINCRBY', P .. ':n:' .. ARGV[2] .. ':conns', ARGV[3], 1)
return redis.call('HINCRBY', P .. ':conns', ARGV[3], 1)`,
  // ARGV: P node app
  censusRelease: `${lib}
local nk = P .. ':n:' .. ARGV[2] .. ':conns'
local mine = tonumber(redis.call('HGET', nk, ARGV[3]) or '0')
if mine <= 0 then return 0 end
if mine == 1 then redis.call('HDEL', nk, ARGV[3]) else redis.call('HINCRBY', nk, ARGV[3], -1) end
if redis.call('HINCRBY', P .. ':conns', ARGV[3], -1) <= 0 then redis.call('HDEL', P .. ':conns', ARGV[3]) end
return 1`,
  // ARGV: P node now → removes a node's share unless its lease is still valid
  censusDropNode: `${lib}${leaseLua}
if leaseValid(P, ARGV[2], ARGV[3]) then return 0 end
drop(ARGV[2])
return 1`,
  // ARGV: P node (app count)* → replaces this node's share with its own record
  censusReplay: `${lib}
drop(ARGV[2])
for i = 3, #ARGV, 2 do
  redis.call('HINCRBY', P .. ':n:' .. ARGV[2] .. ':conns', ARGV[i], ARGV[i + 1])
  redis.call('HINCRBY', P .. ':conns', ARGV[i], ARGV[i + 1])
end
return 1`,
};

export interface RedisCensusOptions {
  redis: Redis;
  prefix: string;
  nodeId: string;
  log: Logger;
}

export class RedisConnectionCensus implements ConnectionCensus, NodeShare {
  private readonly r: Scripted;
  /** this node's admitted connections per app (quota apps only) */
  private mine = new Map<string, number>();
  /** the other nodes' connections per app, as last seen (used while Redis is unreachable) */
  private others = new Map<string, number>();

  constructor(private readonly o: RedisCensusOptions) {
    this.r = defineScripts(o.redis, scripts);
  }

  private bump(appId: string, delta: 1 | -1): void {
    const n = (this.mine.get(appId) ?? 0) + delta;
    if (n > 0) this.mine.set(appId, n);
    else this.mine.delete(appId);
  }

  async admit(app: App): Promise<boolean> {
    if (app.maxConnections < 0) return true; // not counted: nothing to enforce
    try {
      const total = Number(await this.r.censusAdmit(this.o.prefix, this.o.nodeId, app.id, app.maxConnections));
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
    this.r.censusRelease(this.o.prefix, this.o.nodeId, app.id).catch(() => {}); // a reconnect replays the share
  }

  async connections(app: App): Promise<number | undefined> {
    if (app.maxConnections < 0) return undefined;
    return Number((await this.o.redis.hget(`${this.o.prefix}:conns`, app.id)) ?? 0);
  }

  async rejoin(): Promise<void> {
    const args: (string | number)[] = [this.o.prefix, this.o.nodeId];
    for (const [app, n] of this.mine) args.push(app, n);
    await this.r.censusReplay(...args);
  }

  async dropNode(node: string, now: number): Promise<void> {
    await this.r.censusDropNode(this.o.prefix, node, now);
  }
}
