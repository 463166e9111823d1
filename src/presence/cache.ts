// Cache channels (spec §7): the last event published through the API on a cache channel, kept with a
// TTL and sent to each new subscriber. Memory for one node; Redis (with the TTL in Redis) for a cluster.
import type { Redis } from 'ioredis';

export interface CachedEvent {
  event: string;
  data: string;
}

export interface ChannelCache {
  set(appId: string, channel: string, ev: CachedEvent): Promise<void>;
  /** The cached event and its remaining lifetime, or undefined on a miss. */
  get(appId: string, channel: string): Promise<{ ev: CachedEvent; ttlMs: number } | undefined>;
}

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

export class RedisChannelCache implements ChannelCache {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly ttlMs: number,
  ) {}

  private key(appId: string, channel: string): string {
    return `${this.prefix}:cache:${appId}:${channel}`;
  }

  async set(appId: string, channel: string, ev: CachedEvent): Promise<void> {
    await this.redis.set(this.key(appId, channel), JSON.stringify(ev), 'PX', this.ttlMs);
  }

  async get(appId: string, channel: string): Promise<{ ev: CachedEvent; ttlMs: number } | undefined> {
    const res = await this.redis.multi().get(this.key(appId, channel)).pttl(this.key(appId, channel)).exec();
    const value = res?.[0]?.[1] as string | null;
    const ttlMs = res?.[1]?.[1] as number;
    if (!value || ttlMs <= 0) return undefined;
    return { ev: JSON.parse(value) as CachedEvent, ttlMs };
  }
}
