// Per-app REST budgets per second (Soketi's maxBackendEventsPerSecond / maxReadRequestsPerSecond):
// one counter per app, kind and second; in memory on one node, in Redis for a cluster (each node
// counting its own share while Redis cannot be reached).
import type { Redis } from 'ioredis';
import type { RedisKeys } from '../redis/keys.js';

export type RateKind = 'backend' | 'read';

export interface RateDecision {
  allowed: boolean;
  remaining: number;
  /** seconds until the window resets */
  retryAfter: number;
}

export interface RateWindows {
  /** Spends `points` of the app's per-second budget `limit`. */
  consume(appId: string, kind: RateKind, points: number, limit: number): Promise<RateDecision>;
}

function decision(used: number, limit: number, nowMs: number): RateDecision {
  return { allowed: used <= limit, remaining: Math.max(0, limit - used), retryAfter: Math.max(1, Math.ceil((1000 - (nowMs % 1000)) / 1000)) };
}

export class MemoryRateWindows implements RateWindows {
  private windows = new Map<string, { second: number; used: number }>();

  async consume(appId: string, kind: RateKind, points: number, limit: number): Promise<RateDecision> {
    const now = Date.now();
    const second = Math.floor(now / 1000);
    const key = `${kind}:${appId}`;
    let w = this.windows.get(key);
    if (!w || w.second !== second) this.windows.set(key, (w = { second, used: 0 }));
    w.used += points;
    return decision(w.used, limit, now);
  }
}

export class RedisRateWindows implements RateWindows {
  /**
   * While Redis cannot be reached the budget is counted on this node alone: the limit then holds per
   * node rather than cluster-wide, and a trigger within it is still accepted (into the outage buffer),
   * never refused because the count could not be written.
   */
  private readonly local = new MemoryRateWindows();

  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
  ) {}

  async consume(appId: string, kind: RateKind, points: number, limit: number): Promise<RateDecision> {
    const now = Date.now();
    const key = this.keys.rate(kind, appId, Math.floor(now / 1000));
    let res: [Error | null, unknown][] | null;
    try {
      res = await this.redis.multi().incrby(key, points).pexpire(key, 2000).exec();
    } catch {
      return this.local.consume(appId, kind, points, limit);
    }
    const used = Number(res?.[0]?.[1] ?? 0);
    return decision(used, limit, now);
  }
}
