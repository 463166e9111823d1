// Wires one node together; start and graceful stop.
import type { Logger } from 'pino';
import type { us_listen_socket } from 'uWebSockets.js';
import { AppRegistry } from './apps/registry.js';
import type { Config } from './config/schema.js';
import type { Backbone } from './backbone/backbone.js';
import { MemoryBackbone } from './backbone/memory.js';
import type { PresenceStore } from './presence/store.js';
import { MemoryPresenceStore } from './presence/memory.js';
import { MemoryChannelCache, type ChannelCache } from './presence/cache.js';
import { SubscriptionCounts } from './gateway/subscription-count.js';
import { WebhookDelivery } from './webhooks/delivery.js';
import { MemoryWebhookQueue, type WebhookQueue } from './webhooks/queue.js';
import { RedisWebhookQueue } from './webhooks/redis-queue.js';
import { Hub } from './hub/hub.js';
import { Gateway } from './gateway/gateway.js';
import type { SocketData } from './gateway/socket-data.js';
import { buildApi } from './api/api.js';
import { attachApi } from './api/uws-bridge.js';
import { uWS, uwsIsNative } from './uws.js';
import { randomUUID } from 'node:crypto';
import { Metrics } from './metrics/metrics.js';
import type { Redis } from 'ioredis';
import { commandClient, subscriberClient, whenReady } from './backbone/redis-client.js';
import { RedisBackbone } from './backbone/redis-backbone.js';
import { RedisPresenceStore, type ClusterEvent } from './presence/redis-store.js';
import { RedisChannelCache } from './presence/cache.js';
import { RedisQuotas } from './limits/quotas.js';
import { ONLINE_CHANNEL, announce } from './gateway/signin.js';
import * as frames from './protocol/frames.js';
import { MemoryQuotas, type Quotas } from './limits/quotas.js';

export interface RunningNode {
  port: number;
  nodeId: string;
  /** Graceful stop: refuse new sockets, close existing ones with 4200, clean shared state, release the port. */
  stop(): Promise<void>;
}

export class StartError extends Error {
  override name = 'StartError';
}

export async function startNode(config: Readonly<Config>, log: Logger): Promise<RunningNode> {
  if (!uwsIsNative && !config.allowUwsFallback) {
    throw new StartError(
      'uWebSockets.js native binary did not load (running on the slow pure-JS fallback). ' +
        'Fix the install, or set ALLOW_UWS_FALLBACK=1 to run anyway.',
    );
  }
  if (!uwsIsNative) log.warn('running on the pure-JS uWebSockets.js fallback: expect low throughput');

  const nodeId = config.nodeId ?? randomUUID();
  const registry = new AppRegistry(config.apps);
  const metrics = new Metrics();
  const clustered = !!(config.redisUrl || config.redisOptions);
  let gateway: Gateway | undefined;
  let backbone: Backbone;
  let store: PresenceStore;
  let cache: ChannelCache;
  let quotas: Quotas;
  let redisStore: RedisPresenceStore | undefined;
  const redisClients: Redis[] = [];
  let onOrphans: (events: ClusterEvent[]) => void = () => {};
  let webhookQueue: WebhookQueue;
  if (clustered) {
    const target = { url: config.redisUrl, options: config.redisOptions };
    const cmd = commandClient(target, `ripple-${nodeId}`);
    const sub = subscriberClient(target, `ripple-${nodeId}-sub`);
    redisClients.push(cmd, sub);
    for (const [name, c] of [['commands', cmd], ['subscriber', sub]] as const) {
      c.on('error', (err) => log.debug({ err, connection: name }, 'redis error'));
      c.on('reconnecting', () => metrics.redisReconnects.inc());
      c.on('ready', () => log.info({ connection: name }, 'redis up'));
      c.on('close', () => log.warn({ connection: name }, 'redis down'));
    }
    const rb = new RedisBackbone({ pub: cmd, sub, prefix: config.redisPrefix, nodeId, log });
    metrics.backboneReceived = () => rb.received;
    backbone = rb;
    store = redisStore = new RedisPresenceStore({
      redis: cmd,
      prefix: config.redisPrefix,
      nodeId,
      leaseMs: config.nodeLeaseMs,
      log: log.child({ module: 'cluster' }),
      onOrphans: (events) => onOrphans(events),
    });
    cache = new RedisChannelCache(cmd, config.redisPrefix, config.cacheTtl * 1000);
    quotas = new RedisQuotas(cmd, config.redisPrefix, nodeId, () => gateway?.localConnections() ?? new Map());
    const hasWebhooks = config.apps.some((a) => a.webhooks.length > 0);
    if (hasWebhooks) {
      const bell = subscriberClient(target, `ripple-${nodeId}-webhooks`);
      bell.on('error', (err) => log.debug({ err, connection: 'webhooks' }, 'redis error'));
      redisClients.push(bell);
      webhookQueue = new RedisWebhookQueue({
        redis: cmd,
        subscriber: bell,
        prefix: config.redisPrefix,
        nodeId,
        leaseMs: config.webhooks.claimIdleMs,
        log: log.child({ module: 'webhooks' }),
      });
    } else {
      webhookQueue = new MemoryWebhookQueue();
    }
    const up = await Promise.all([whenReady(cmd, 5000), whenReady(sub, 5000)]);
    if (!up.every(Boolean)) log.warn('redis is not reachable yet: serving local sockets, will register when it is');
    const ping = setInterval(() => {
      if (cmd.status !== 'ready') return;
      const end = metrics.redisRoundTrip.startTimer();
      cmd.ping().then(() => end(), () => {});
    }, 5000);
    ping.unref();
  } else {
    backbone = new MemoryBackbone();
    store = new MemoryPresenceStore();
    cache = new MemoryChannelCache(config.cacheTtl * 1000);
    quotas = new MemoryQuotas();
    webhookQueue = new MemoryWebhookQueue();
  }
  const webhooks = new WebhookDelivery(registry, webhookQueue, config.webhooks, log.child({ module: 'webhooks' }));
  metrics.setWebhookSource(webhooks);
  await webhooks.start();
  const counts = new SubscriptionCounts({ backbone, webhooks });

  const uws = config.tls
    ? uWS.SSLApp({ cert_file_name: config.tls.certFile, key_file_name: config.tls.keyFile, passphrase: config.tls.passphrase })
    : uWS.App();
  const hub = new Hub<SocketData>(uws, metrics.hot);
  let draining = false;
  const ctx = { hub, backbone, store, webhooks, cache, counts, log: log.child({ module: 'gateway' }) };
  gateway = new Gateway(ctx, registry, config, metrics, quotas);
  gateway.attach(uws);
  const gw = gateway;

  // What became due when a node's share of the cluster state was removed (its crash, or our stop).
  onOrphans = (events) => {
    for (const e of events) {
      const app = registry.findById(e.appId);
      if (!app) continue;
      if (e.kind === 'channel_vacated') {
        webhooks.emit(app, { name: 'channel_vacated', channel: e.channel });
      } else if (e.channel === ONLINE_CHANNEL) {
        announce(ctx, e.appId, e.userId, 'offline');
      } else {
        backbone.publish(e.appId, e.channel, frames.memberRemoved(e.channel, e.userId));
        webhooks.emit(app, { name: 'member_removed', channel: e.channel, user_id: e.userId });
      }
    }
  };

  await backbone.start(
    (appId, channel, frame, except) => hub.deliver(appId, channel, frame, except),
    (cmd) => {
      if (cmd.type === 'terminate-user') gw.terminateUser(cmd.appId, cmd.userId);
    },
  );

  const api = buildApi({
    registry,
    backbone,
    store,
    cache,
    log,
    maxRequestBytes: config.maxRequestBytes,
    isReady: () => !draining && backbone.isHealthy(),
    metrics,
    quotas,
    webhooks,
  });
  await api.ready();
  attachApi(uws, api, config.maxRequestBytes);

  // --- port ownership (config.reusePort, see schema.ts) ---
  // uWebSockets.js listens with SO_REUSEPORT unless given LIBUS_LISTEN_EXCLUSIVE_PORT (1): a second
  // single-node server on the port would then start too and silently take part of the clients.
  // Port sharing is for cluster mode (one process per core), where every process serves the same state.
  const sharePort = config.reusePort ?? clustered;
  const listenOptions = sharePort ? 0 : 1; // LIBUS_LISTEN_DEFAULT : LIBUS_LISTEN_EXCLUSIVE_PORT
  type ListenWithOptions = { listen(host: string, port: number, options: number, cb: (s: us_listen_socket | false) => void): unknown };
  const listenSocket = await new Promise<us_listen_socket>((resolve, reject) => {
    (uws as unknown as ListenWithOptions).listen(config.host, config.port, listenOptions, (s) =>
      s
        ? resolve(s)
        : reject(
            new StartError(
              `cannot listen on ${config.host}:${config.port}: ` +
                (sharePort
                  ? 'the port is taken by a process that does not share it, or the address is not available on this machine'
                  : 'the port is already in use, or the address is not available on this machine. ' +
                    'A single-node server owns its port; processes share one port only in cluster mode (REDIS_URL)'),
            ),
          ),
    );
  });
  // --- end port ownership ---
  const port = uWS.us_socket_local_port(listenSocket);
  log.info({ port, host: config.host, nodeId, mode: clustered ? 'redis' : 'memory', tls: !!config.tls, apps: registry.all().length }, 'listening');

  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      draining = true;
      log.info('draining');
      gw.drain();
      counts.close();
      // Let the close frames go out before the port is released.
      await new Promise((r) => setTimeout(r, 100));
      uWS.us_listen_socket_close(listenSocket);
      // Leave the cluster now rather than at lease expiry, and announce what that makes due.
      if (redisStore) onOrphans(await redisStore.leaveCluster());
      // Single-node mode keeps pending webhooks in memory: give them part of the deadline to go out.
      await Promise.allSettled([webhooks.close(clustered ? 0 : Math.floor(config.shutdownTimeoutMs / 2)), store.close(), quotas.close(), api.close()]);
      await backbone.close();
      for (const c of redisClients) c.disconnect();
      log.info('stopped');
    })());

  return { port, nodeId, stop };
}
