// Cache channels (spec §7): the last event published through the API on a cache channel, kept with a
// TTL and sent to each new subscriber. Memory for one node (memory.ts); Redis, with the TTL in Redis,
// for a cluster (redis.ts).

export interface CachedEvent {
  event: string;
  data: string;
}

/**
 * One cache_miss webhook per channel in this window, however many subscribers miss (hosted Pusher
 * de-duplicates them, spec §7): long enough to cover a burst of subscribers while the app's server
 * fills the cache, short enough that a server that did not fill it hears of the next miss.
 */
export const CACHE_MISS_WEBHOOK_WINDOW_MS = 5000;

export interface ChannelCache {
  set(appId: string, channel: string, ev: CachedEvent): Promise<void>;
  /** The cached event and its remaining lifetime, or undefined on a miss. */
  get(appId: string, channel: string): Promise<{ ev: CachedEvent; ttlMs: number } | undefined>;
  /** True for the first miss of the channel in CACHE_MISS_WEBHOOK_WINDOW_MS (cluster-wide in Redis). */
  firstMiss(appId: string, channel: string): Promise<boolean>;
}
