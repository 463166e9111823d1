// A cluster node: shared state in Redis, fan-out over Redis pub/sub, one node lease that removes a
// dead node's share and hands its webhook queues over. Three connections: commands, the backbone's
// subscriptions, and the webhook doorbell (always: an app given webhooks later queues them in Redis
// like the others, so they survive this node).
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import { RedisBackbone } from '../backbone/redis.js';
import { RedisChannelCache } from '../cache/redis.js';
import { NodeLease } from '../cluster/node-lease.js';
import { RedisHistory } from '../history/redis.js';
import { RedisConnectionCensus } from '../limits/connection-census.js';
import { RedisRateWindows } from '../limits/rate-windows.js';
import type { Metrics } from '../metrics/metrics.js';
import { RedisPresenceStore } from '../presence/redis.js';
import { RedisClusterPresenceStore } from '../presence/redis-cluster.js';
import type { TransitionRouter } from '../presence/store.js';
import { CLUSTER_RESUBSCRIBE_EXTRA_MS, commandClient, RECONNECT_MAX_DELAY_MS, subscriberClient, whenReady } from '../redis/clients.js';
import { RedisKeys } from '../redis/keys.js';
import { RedisOutageLog } from '../redis/outage-log.js';
import { RedisWebhookQueue } from '../webhooks/redis-queue.js';
import type { Engine, EngineHandlers } from './engine.js';

const HEALTH_PING_MS = 5000;

/** `routes`: which webhook queues want each presence transition (they follow the app store). */
export function redisEngine(config: Readonly<Config>, nodeId: string, log: Logger, metrics: Metrics, routes: TransitionRouter): Engine {
  const target = { url: config.redisUrl, options: config.redisOptions, clusterNodes: config.redisClusterNodes };
  const keys = new RedisKeys(config.redisPrefix, { cluster: !!config.redisClusterNodes });
  const cmd = commandClient(target, `ripple-${nodeId}`);
  const sub = subscriberClient(target, `ripple-${nodeId}-sub`, true);
  const bell = subscriberClient(target, `ripple-${nodeId}-webhooks`);
  const clients = [cmd, sub, bell];
  const outage = new RedisOutageLog(log);
  for (const [name, c] of [['commands', cmd], ['subscriber', sub], ['webhooks', bell]] as const) {
    c.on('reconnecting', () => metrics.redisReconnects.inc());
    outage.watch(name, c);
  }

  const clusterLog = log.child({ module: 'cluster' });
  // Every live node's connections are back within the longest reconnect delay (and the reconnect itself)
  // of Redis coming back: the outbox waits that long for the others to resubscribe, and a node
  // restoring after Redis lost its data waits that long for the others to restore.
  const reconnectGraceMs = RECONNECT_MAX_DELAY_MS + 500 + (config.redisClusterNodes ? CLUSTER_RESUBSCRIBE_EXTRA_MS : 0);
  const lease = new NodeLease({ redis: cmd, keys, nodeId, leaseMs: config.nodeLeaseMs, reconnectGraceMs, log: clusterLog });
  const backbone = new RedisBackbone({ pub: cmd, sub, keys, nodeId, limits: config.backboneBuffer, resubscribeGraceMs: reconnectGraceMs, log });
  // On Redis Cluster each channel's counts and members live in the channel's slot (docs/redis-cluster.md).
  const storeOptions = { redis: cmd, keys, nodeId, log: clusterLog, lease, routes };
  const store = keys.cluster ? new RedisClusterPresenceStore(storeOptions) : new RedisPresenceStore(storeOptions);
  const census = new RedisConnectionCensus({ redis: cmd, keys, nodeId, log: clusterLog });
  lease.add(store);
  lease.add(census);
  const webhookQueue = new RedisWebhookQueue({ redis: cmd, subscriber: bell, keys, lease, log: log.child({ module: 'webhooks' }) });
  lease.watch(webhookQueue);
  let ping: NodeJS.Timeout | undefined;

  return {
    mode: 'redis',
    backbone,
    store,
    cache: new RedisChannelCache(cmd, keys, config.cacheTtl * 1000),
    history: new RedisHistory(cmd, keys),
    rates: new RedisRateWindows(cmd, keys),
    census,
    webhookQueue,
    async start(handlers: EngineHandlers) {
      store.start(handlers.clusterState);
      const up = await Promise.all([whenReady(cmd, 5000), whenReady(sub, 5000)]);
      if (!up.every(Boolean)) log.warn('redis is not reachable yet: serving local sockets, will register when it is');
      await lease.start();
      await backbone.start(handlers);
      ping = setInterval(() => {
        if (cmd.status !== 'ready') return;
        const end = metrics.redisRoundTrip.startTimer();
        cmd.ping().then(() => end(), () => {});
      }, HEALTH_PING_MS);
      ping.unref();
    },
    isHealthy: () => backbone.isHealthy() && store.registered,
    leave: () => lease.leave(),
    async close() {
      outage.stop();
      if (ping) clearInterval(ping);
      await backbone.close();
      for (const c of clients) c.disconnect();
    },
  };
}
