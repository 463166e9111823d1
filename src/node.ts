// Wires one node together; start and graceful stop. Each step names the module that does the work.
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { TemplatedApp, us_listen_socket } from 'uWebSockets.js';
import { buildApi } from './api/api.js';
import { serveMetricsPort } from './api/metrics-port.js';
import { RequestLog } from './api/request-log.js';
import { Trigger } from './api/trigger.js';
import { attachApi } from './api/uws-bridge.js';
import { AppRegistry } from './apps/registry.js';
import { Channels } from './channels/channels.js';
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
  requireNativeUws(config, log);
  const startedAt = Date.now();
  const nodeId = config.nodeId ?? randomUUID();
  const registry = new AppRegistry(config.apps);
  const metrics = new Metrics();
  const engine = createEngine(config, nodeId, log, metrics);
  const { backbone, store, cache, rates } = engine;
  const webhooks = new WebhookDelivery(registry, engine.webhookQueue, config.webhooks, log.child({ module: 'webhooks' }));
  const hub = new Hub(metrics);
  const channels = new Channels({ registry, hub, backbone, store, cache, history: engine.history, webhooks, metrics, log: log.child({ module: 'channels' }) });
  const sessions = new Sessions({ registry, hub, channels, webhooks, census: engine.census, metrics, settings: config, log: log.child({ module: 'sessions' }) });
  metrics.collectFrom({ sessions, webhooks, backbone });

  await engine.start({ frames: hub, commands: sessions, clusterState: channels, feed: channels });
  await webhooks.start();

  const uws = createApp(config);
  // Node raised the soft limit to the hard one at start already (limits/open-files.ts).
  const fileLimit = openFileLimit();
  const capacity = { openFiles: fileLimit && new OpenFiles(fileLimit.soft) };
  hub.addFanout(attachWebSockets(uws, sessions, config, capacity, log.child({ module: 'websocket' })));
  // pusher-js's HTTP fallback; its routes come before the REST bridge's catch-all (attachApi).
  hub.addFanout(attachHttpTransport(uws, sessions, config, capacity, log.child({ module: 'http-transport' })));
  let draining = false;
  const requests = new RequestLog(registry, metrics, log.child({ module: 'rest' }));
  const trigger = new Trigger({ registry, channels, store, cache, rates, requests, log });
  const isReady = () => !draining && engine.isHealthy();
  const metricsOnMainPort = config.metricsPort === undefined;
  const usage = { nodeId, startedAt, clustered: engine.mode === 'redis', sessions, traffic: metrics, census: engine.census };
  const api = buildApi({ registry, backbone, store, cache, history: engine.history, rates, trigger, deadLetters: webhooks, usage, requests, metrics, metricsOnMainPort, log, maxRequestBytes: config.maxRequestBytes, isReady });
  await api.ready();
  attachApi(uws, api, trigger, config.maxRequestBytes, requests);

  const listenSocket = await listen(uws, config.host, config.port, config.reusePort ?? engine.mode === 'redis');
  const port = uWS.us_socket_local_port(listenSocket);
  const openFiles = fileLimit && { limit: fileLimit.soft, hard: fileLimit.hard, reserve: capacity.openFiles!.reserve };
  log.info({ port, host: config.host, nodeId, mode: engine.mode, tls: !!config.tls, apps: registry.all().length, openFiles }, 'listening');
  const metricsPort = metricsOnMainPort ? undefined : await serveMetricsPort(metrics, config.metricsHost ?? config.host, config.metricsPort!, log);
  if (metricsPort) log.info({ port: metricsPort.port, host: config.metricsHost ?? config.host }, 'metrics listening');

  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      draining = true;
      log.info('draining');
      sessions.drain();
      // Let the close frames go out before the port is released.
      await new Promise((r) => setTimeout(r, 100));
      uWS.us_listen_socket_close(listenSocket);
      metricsPort?.close();
      // Leave the cluster now rather than at lease expiry; what that makes due goes to the channels.
      await engine.leave();
      channels.close();
      // Single-node mode keeps pending webhooks in memory: give them part of the deadline to go out.
      const webhookDrainMs = engine.mode === 'memory' ? Math.floor(config.shutdownTimeoutMs / 2) : 0;
      await Promise.allSettled([webhooks.close(webhookDrainMs), api.close()]);
      await engine.close();
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
