// Wires one node together; start and graceful stop. Each step names the module that does the work.
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { TemplatedApp, us_listen_socket } from 'uWebSockets.js';
import { buildApi } from './api/api.js';
import { serveMetricsPort } from './api/metrics-port.js';
import { serveRecoveryPlugin } from './api/recovery-plugin-files.js';
import { RequestLog } from './api/request-log.js';
import { Trigger } from './api/trigger.js';
import { attachApi } from './transport/rest-bridge.js';
import { openDatabaseStore } from './apps/database-store.js';
import { StaticAppStore } from './apps/static-store.js';
import { configOf } from './apps/app.js';
import type { AppStore } from './apps/store.js';
import type { ManagedApps } from './api/routes/manage-apps.js';
import { CommandRouter } from './backbone/command-router.js';
import { Channels } from './channels/channels.js';
import { TrafficHistory } from './console/overview.js';
import { ConsoleRelay, MemoryRelayTransport } from './console/relay.js';
import { RedisRelayTransport } from './console/redis-relay.js';
import { serveConsole } from './console/routes.js';
import { ConsoleTap } from './console/tap.js';
import { RedisKeys } from './redis/keys.js';
import type { Config } from './config/schema.js';
import { createEngine } from './engine/create.js';
import { Hub } from './hub/hub.js';
import { OpenFiles, openFileLimit } from './limits/open-files.js';
import { Metrics } from './metrics/metrics.js';
import { Sessions } from './session/sessions.js';
import { attachHttpTransport } from './transport/http-transport.js';
import { attachWebSockets } from './transport/websocket.js';
import { uWS, uwsIsNative, uwsLoadReport, uwsSource } from './uws.js';
import { WebhookDelivery } from './webhooks/delivery.js';
import { WebhookRoutes } from './webhooks/routes.js';
import type { PrimaryLink } from './workers/worker.js';

export interface RunningNode {
  port: number;
  nodeId: string;
  /** Graceful stop: release the port (no new handshakes reach this node), close existing sockets with 4200, clean shared state. */
  stop(): Promise<void>;
}

export class StartError extends Error {
  override name = 'StartError';
}

/** Parts a caller may supply instead of the ones the config describes. */
export interface NodeParts {
  /** Where apps come from (default: the config's app list, frozen). */
  apps?: AppStore;
  /** This node is one of several processes a primary started (config.workers > 1). */
  primary?: PrimaryLink;
}

export async function startNode(config: Readonly<Config>, log: Logger, parts: NodeParts = {}): Promise<RunningNode> {
  requireNativeUws(config, log);
  const startedAt = Date.now();
  const nodeId = config.nodeId ?? randomUUID();
  // Apps from a database when the config names one (never failing for an unreachable one), else the config's.
  const database = !parts.apps && config.appStore ? await openDatabaseStore(config.appStore, log.child({ module: 'apps' })) : undefined;
  const apps = parts.apps ?? database?.store ?? new StaticAppStore(config.apps);
  const metrics = new Metrics();
  const engine = createEngine(config, nodeId, log, metrics, new WebhookRoutes(apps));
  const { backbone, store, cache, rates } = engine;
  // The debug console's tap (issue 21): off (one boolean) until a console watches an app.
  const tap = new ConsoleTap(nodeId, () => apps.all());
  const webhooks = new WebhookDelivery(apps, engine.webhookQueue, config.webhooks, log.child({ module: 'webhooks' }), tap);
  const hub = new Hub(metrics);
  const channels = new Channels({ apps, hub, backbone, store, cache, history: engine.history, webhooks, metrics, log: log.child({ module: 'channels' }), tap });
  // Node raised the soft limit to the hard one at start already (limits/open-files.ts).
  const fileLimit = openFileLimit();
  // Asked only once connections arrive, by which time openFiles exists.
  const capacity = fileLimit ? (): boolean => openFiles!.admit() : undefined;
  const sessions = new Sessions({ apps, hub, channels, webhooks, census: engine.census, capacity, metrics, settings: config, log: log.child({ module: 'sessions' }), tap });
  const openFiles = fileLimit && new OpenFiles(fileLimit.soft, (): number => sessions.connectionCount());
  const commands = new CommandRouter(log.child({ module: 'commands' }));
  commands.on('terminate-user', (c) => sessions.terminateUser(c.appId, c.userId));
  commands.on('app-changed', (c) => void database?.reload(c.appId));
  // The console exists only with an operator token; its relay carries watched apps' events between nodes.
  const relayTransport = () =>
    engine.mode === 'redis'
      ? new RedisRelayTransport({ url: config.redisUrl, options: config.redisOptions }, new RedisKeys(config.redisPrefix), `ripple-${nodeId}`, log.child({ module: 'console' }))
      : new MemoryRelayTransport();
  // The overview's charts: every 5 s, this node's connections and messages per second per app (a console
  // stream that opens gets the samples so far: the relay's greeting).
  const trafficHistory = config.operatorToken ? new TrafficHistory({ connections: () => sessions.localConnections(), traffic: (id) => metrics.traffic(id) }, tap) : undefined;
  const relay = trafficHistory ? new ConsoleRelay(tap, (cmd) => backbone.broadcastCommand(cmd), relayTransport(), log.child({ module: 'console' }), (appId, to) => trafficHistory.greet(appId, to)) : undefined;
  if (relay) commands.on('console-watch', (c) => relay.command(c));
  trafficHistory?.start();
  metrics.collectFrom({ sessions, webhooks, backbone, appStore: database?.store });
  // One process of several: a scrape here answers every process's figures, added up by the primary.
  if (parts.primary) metrics.scrapeThrough(parts.primary.shareMetrics(metrics.registry));

  await engine.start({ frames: hub, commands, clusterState: channels, feed: channels });
  await webhooks.start();

  const uws = createApp(config);
  hub.addFanout(attachWebSockets(uws, sessions, config, log.child({ module: 'websocket' })));
  // pusher-js's HTTP fallback; its routes come before the REST bridge's catch-all (attachApi).
  hub.addFanout(attachHttpTransport(uws, sessions, config, log.child({ module: 'http-transport' })));
  let draining = false;
  const requests = new RequestLog(apps, metrics, log.child({ module: 'rest' }));
  const trigger = new Trigger({ apps, channels, store, cache, rates, requests, log, tap });
  const isReady = () => !draining && engine.isHealthy();
  const metricsOnMainPort = config.metricsPort === undefined;
  const usage = { nodeId, startedAt, clustered: engine.mode === 'redis', sessions, traffic: metrics, census: engine.census };
  const managedApps: ManagedApps = database
    ? {
        list: () => database.source.all(),
        get: (id) => database.source.byId(id),
        writer: database.source,
        defaults: config.appStore!.defaults,
        async changed(appId) {
          await database.reload(appId);
          backbone.broadcastCommand({ type: 'app-changed', appId });
        },
      }
    : {
        list: async () => apps.all().map((app) => ({ ok: true, id: app.id, config: configOf(app), notes: [] })),
        get: async (id) => {
          const app = await apps.findById(id);
          return app && { ok: true, id, config: configOf(app), notes: [] };
        },
        defaults: {},
        changed: async () => undefined,
      };
  const api = buildApi({ apps, backbone, store, cache, history: engine.history, rates, trigger, deadLetters: webhooks, usage, requests, metrics, metricsOnMainPort, log, maxRequestBytes: config.maxRequestBytes, isReady, appStoreUp: database && (() => database.store.up), pathPrefix: config.pathPrefix, operatorToken: config.operatorToken, managedApps, tap });
  await api.ready();
  // Before the REST bridge's catch-all, like the HTTP fallback.
  const recoveryPlugin = serveRecoveryPlugin(uws, config.pathPrefix, log);
  const consolePage = relay && serveConsole(uws, { apps, relay, trigger, store, deadLetters: webhooks, operatorToken: config.operatorToken!, pathPrefix: config.pathPrefix, maxRequestBytes: config.maxRequestBytes, log: log.child({ module: 'console' }) });
  attachApi(uws, api, trigger, config.maxRequestBytes, requests, config.pathPrefix);

  const listenSocket = await listen(uws, config.host, config.port, config.reusePort ?? engine.mode === 'redis');
  const port = uWS.us_socket_local_port(listenSocket);
  openFiles?.calibrate();
  const fileReport = fileLimit && { limit: fileLimit.soft, hard: fileLimit.hard, reserve: openFiles!.reserve };
  log.info({ port, host: config.host, nodeId, mode: engine.mode, tls: !!config.tls, apps: apps.all().length, openFiles: fileReport, recoveryPlugin, console: consolePage?.path }, 'listening');
  // With several processes the primary serves the metrics port, for all of them.
  const metricsPort = metricsOnMainPort || parts.primary ? undefined : await serveMetricsPort(metrics, config.metricsHost ?? config.host, config.metricsPort!, config.pathPrefix, log);
  if (metricsPort) log.info({ port: metricsPort.port, host: config.metricsHost ?? config.host }, 'metrics listening');

  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      // New handshakes first go elsewhere: with the listening socket closed the kernel refuses them
      // (or, with a shared port, hands them to the other processes) and /ready fails, so the clients
      // told 4200 below reconnect to another node instead of knocking here again.
      draining = true;
      uWS.us_listen_socket_close(listenSocket);
      log.info('draining');
      sessions.drain();
      // Let the close frames go out before the shared state goes.
      await new Promise((r) => setTimeout(r, 100));
      metricsPort?.close();
      // Leave the cluster now rather than at lease expiry; what that makes due goes to the channels.
      await engine.leave();
      channels.close();
      consolePage?.close();
      trafficHistory?.close();
      await relay?.close();
      // Single-node mode keeps pending webhooks in memory: give them part of the deadline to go out.
      const webhookDrainMs = engine.mode === 'memory' ? Math.floor(config.shutdownTimeoutMs / 2) : 0;
      await Promise.allSettled([webhooks.close(webhookDrainMs), api.close()]);
      await engine.close();
      await database?.close();
      log.info('stopped');
    })());

  return { port, nodeId, stop };
}

/** The npm alias we install silently falls back to a slow pure-JS shim: refuse it unless told otherwise. */
function requireNativeUws(config: Readonly<Config>, log: Logger): void {
  if (uwsIsNative) return void log.info({ uws: uwsSource }, uwsLoadReport());
  if (!config.allowUwsFallback) {
    throw new StartError(
      'uWebSockets.js native binary did not load (running on the slow pure-JS fallback). ' +
        `Fix the install, or set ALLOW_UWS_FALLBACK=1 to run anyway.\n${uwsLoadReport()}`,
    );
  }
  log.warn({ uws: uwsSource }, `running on the pure-JS uWebSockets.js fallback: expect low throughput\n${uwsLoadReport()}`);
}

function createApp(config: Readonly<Config>): TemplatedApp {
  if (!config.tls) return uWS.App();
  return uWS.SSLApp({ cert_file_name: config.tls.certFile, key_file_name: config.tls.keyFile, passphrase: config.tls.passphrase });
}

// --- port ownership (config.reusePort, see config/schema.ts) ---
// uWebSockets.js listens with SO_REUSEPORT unless given LIBUS_LISTEN_EXCLUSIVE_PORT (1): a second
// single-node server on the port would then start too and silently take part of the clients.
// Port sharing is for cluster mode (one process per core), where every process serves the same state.
type ListenWithOptions = { listen(host: string, port: number, options: number, cb: (s: us_listen_socket | false) => void): unknown };
function listen(uws: TemplatedApp, host: string, port: number, sharePort: boolean): Promise<us_listen_socket> {
  const options = sharePort ? 0 : 1; // LIBUS_LISTEN_DEFAULT : LIBUS_LISTEN_EXCLUSIVE_PORT (the typings lack this overload)
  const why = sharePort
    ? 'the port is taken by a process that does not share it, or the address is not available on this machine'
    : 'the port is already in use, or the address is not available on this machine. ' +
      'A single-node server owns its port; processes share one port only in cluster mode (REDIS_URL)';
  return new Promise((resolve, reject) => {
    (uws as unknown as ListenWithOptions).listen(host, port, options, (s) => (s ? resolve(s) : reject(new StartError(`cannot listen on ${host}:${port}: ${why}`))));
  });
}
// --- end port ownership ---
