import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import type { Metrics } from '../metrics/metrics.js';
import type { TransitionRouter } from '../presence/store.js';
import type { Engine } from './engine.js';
import { memoryEngine } from './memory.js';
import { redisEngine } from './redis.js';

/** Redis when the config names one (cluster mode), else one node in memory. */
export function createEngine(config: Readonly<Config>, nodeId: string, log: Logger, metrics: Metrics, routes: TransitionRouter): Engine {
  const clustered = !!(config.redisUrl || config.redisOptions || config.redisClusterNodes);
  return clustered ? redisEngine(config, nodeId, log, metrics, routes) : memoryEngine(config.cacheTtl * 1000);
}
