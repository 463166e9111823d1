// Per-app quotas that one node alone cannot enforce in a cluster (issue: production readiness):
// connections per app (4004) and REST events/reads per second (429).
import type { Redis } from 'ioredis';

export type RateKind = 'backend' | 'read';

export interface RateDecision {
  allowed: boolean;
  remaining: number;
  /** seconds until the window resets */
  retryAfter: number;
}

export interface Quotas {
  /** Connections of the app on other nodes, as last reported (0 in single-node mode). */
  remoteConnections(appId: string): number;
  /** Spends `points` of the app's per-second budget `limit`. */
  consume(appId: string, kind: RateKind, points: number, limit: number): Promise<RateDecision>;
  close(): Promise<void>;
}

function windowDecision(used: number, limit: number, nowMs: number): RateDecision {
  return { allowed: used <= limit, remaining: Math.max(0, limit - used), retryAfter: Math.max(1, Math.ceil((1000 - (nowMs % 1000)) / 1000)) };
}

export class MemoryQuotas implements Quotas {
  private windows = new Map<string, { second: number; used: number }>();

  remoteConnections(): number {
    return 0;
  }

  async consume(appId: string, kind: RateKind, points: number, limit: number): Promise<RateDecision> {
    const now = Date.now();
    const second = Math.floor(now / 1000);
    const key = `${kind}:${appId}`;
    let w = this.windows.get(key);
    if (!w || w.second !== second) this.windows.set(key, (w = { second, used: 0 }));
    w.used += points;
    return windowDecision(w.used, limit, now);
  }

  async close(): Promise<void> {}
}

/**
 * Each node writes its per-app connection counts to one hash every `reportMs` and reads the others';
 * entries older than `staleMs` (a dead node's) are ignored and removed. Rates use one Redis counter per
 * app and second.
 */
export class RedisQuotas implements Quotas {
  private remote = new Map<string, number>();
  private timer: NodeJS.Timeout;

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly nodeId: string,
    private readonly localConnections: () => Map<string, number>,
    private readonly reportMs = 1000,
    private readonly staleMs = 5000,
  ) {
    this.timer = setInterval(() => void this.sync().catch(() => {}), reportMs);
    this.timer.unref();
    void this.sync().catch(() => {});
  }

  private get hashKey(): string {
    return `${this.prefix}:connections`;
  }

  private async sync(): Promise<void> {
    const now = Date.now();
    const mine = JSON.stringify({ at: now, apps: Object.fromEntries(this.localConnections()) });
    const [, all] = (await this.redis.multi().hset(this.hashKey, this.nodeId, mine).hgetall(this.hashKey).exec()) ?? [];
    const entries = (all?.[1] ?? {}) as Record<string, string>;
    const remote = new Map<string, number>();
    const stale: string[] = [];
    for (const [node, raw] of Object.entries(entries)) {
      if (node === this.nodeId) continue;
      let v: { at: number; apps: Record<string, number> };
      try {
        v = JSON.parse(raw);
      } catch {
        stale.push(node);
        continue;
      }
      if (now - v.at > this.staleMs) {
        stale.push(node);
        continue;
      }
      for (const [app, n] of Object.entries(v.apps)) remote.set(app, (remote.get(app) ?? 0) + n);
    }
    if (stale.length) await this.redis.hdel(this.hashKey, ...stale);
    this.remote = remote;
  }

  remoteConnections(appId: string): number {
    return this.remote.get(appId) ?? 0;
  }

  async consume(appId: string, kind: RateKind, points: number, limit: number): Promise<RateDecision> {
    const now = Date.now();
    const key = `${this.prefix}:rate:${kind}:${appId}:${Math.floor(now / 1000)}`;
    const res = await this.redis.multi().incrby(key, points).pexpire(key, 2000).exec();
    const used = Number(res?.[0]?.[1] ?? 0);
    return windowDecision(used, limit, now);
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.redis.hdel(this.hashKey, this.nodeId).catch(() => {});
  }
}
