import type { CachedEvent, ChannelCache } from './channel-cache.js';

export class MemoryChannelCache implements ChannelCache {
  private entries = new Map<string, { ev: CachedEvent; expiresAt: number }>();
  private sweeper: NodeJS.Timeout;

  constructor(private readonly ttlMs: number) {
    this.sweeper = setInterval(() => {
      const now = Date.now();
      for (const [k, e] of this.entries) if (e.expiresAt <= now) this.entries.delete(k);
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
}
