// Cache channels (spec §7): the last event published through the API on a cache channel, kept with a
// TTL and sent to each new subscriber. Memory for one node (memory.ts); Redis, with the TTL in Redis,
// for a cluster (redis.ts).

export interface CachedEvent {
  event: string;
  data: string;
}

export interface ChannelCache {
  set(appId: string, channel: string, ev: CachedEvent): Promise<void>;
  /** The cached event and its remaining lifetime, or undefined on a miss. */
  get(appId: string, channel: string): Promise<{ ev: CachedEvent; ttlMs: number } | undefined>;
}
