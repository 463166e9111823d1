import { CACHE_MISS_WEBHOOK_WINDOW_MS, type CachedEvent, type ChannelCache } from './channel-cache.js';

export class MemoryChannelCache implements ChannelCache {
  private entries = new Map<string, { ev: CachedEvent; expiresAt: number }>();
  /** channel → when its miss window ends */
  private misses = new Map<string, number>();
  private sweeper: NodeJS.Timeout;

  constructor(private readonly ttlMs: number) {
    this.sweeper = setInterval(() => {
      const now = Date.now();
      for (const [k, e] of this.entries) if (e.expiresAt <= now) this.entries.delete(k);
      for (const [k, until] of this.misses) if (until <= now) this.misses.delete(k);
    }, Math.min(ttlMs, 60_000));
    this.sweeper.unref();
  }

  async set(appId: string, channel: string, ev: CachedEvent): Promise<void> {
    this.entries.set(`${appId}:${channel}`, { ev, expiresAt: Date.now() + this.ttlMs });
  }

  async get(appId: string, channel: string): Promise<{ ev: CachedEvent; ttlMs: number } | undefined> {
    const e = this.entries.get(`${appId}:${channel}`);
    if (!e) return undefined;
    const ttlMs = e.expiresAt - Date.now();
    if (ttlMs <= 0) {
      this.entries.delete(`${appId}:${channel}`);
      return undefined;
    }
    return { ev: e.ev, ttlMs };
  }

  async firstMiss(appId: string, channel: string): Promise<boolean> {
    const k = `${appId}:${channel}`;
    const now = Date.now();
    if ((this.misses.get(k) ?? 0) > now) return false;
    this.misses.set(k, now + CACHE_MISS_WEBHOOK_WINDOW_MS);
    return true;
  }
}
