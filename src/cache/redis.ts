import type { Redis } from 'ioredis';
import type { RedisKeys } from '../redis/keys.js';
import { CACHE_MISS_WEBHOOK_WINDOW_MS, type CachedEvent, type ChannelCache } from './channel-cache.js';

export class RedisChannelCache implements ChannelCache {
  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
    private readonly ttlMs: number,
  ) {}

  async set(appId: string, channel: string, ev: CachedEvent): Promise<void> {
    await this.redis.set(this.keys.cache(appId, channel), JSON.stringify(ev), 'PX', this.ttlMs);
  }

  async get(appId: string, channel: string): Promise<{ ev: CachedEvent; ttlMs: number } | undefined> {
    const key = this.keys.cache(appId, channel);
    const res = await this.redis.multi().get(key).pttl(key).exec();
    const value = res?.[0]?.[1] as string | null;
    const ttlMs = res?.[1]?.[1] as number;
    if (!value || ttlMs <= 0) return undefined;
    return { ev: JSON.parse(value) as CachedEvent, ttlMs };
  }

  async firstMiss(appId: string, channel: string): Promise<boolean> {
    // SET NX: of the nodes that miss at once, exactly one gets OK.
    const key = this.keys.cacheMiss(appId, channel);
    return (await this.redis.set(key, '1', 'PX', CACHE_MISS_WEBHOOK_WINDOW_MS, 'NX')) === 'OK';
  }
}
