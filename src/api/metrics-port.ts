// The optional separate metrics port (Soketi's metrics server, 9601 by default there): /metrics for
// Prometheus and /health, so the scrape need not be reachable on the public port.
import type { us_listen_socket } from 'uWebSockets.js';
import type { Logger } from 'pino';
import type { Metrics } from '../metrics/metrics.js';
import { uWS } from '../uws.js';

type ListenWithOptions = { listen(host: string, port: number, options: number, cb: (s: us_listen_socket | false) => void): unknown };

export interface MetricsPort {
  port: number;
  close(): void;
}

/** `pathPrefix`: the paths are under it, as on the main port (and as Soketi's metrics server does). */
export function serveMetricsPort(metrics: Metrics, host: string, port: number, pathPrefix: string, log: Logger): Promise<MetricsPort> {
  const app = uWS.App();
  app.get(`${pathPrefix}/metrics`, (res) => {
    let aborted = false;
    res.onAborted(() => (aborted = true));
    metrics.scrape().then(
      (text) => {
        if (!aborted) res.cork(() => res.writeHeader('content-type', metrics.contentType).end(text));
      },
      (err) => {
        log.error({ err }, 'metrics scrape failed');
        if (!aborted) res.cork(() => res.writeStatus('500 Internal Server Error').end());
      },
    );
  });
  app.get(`${pathPrefix}/health`, (res) => void res.writeHeader('content-type', 'application/json').end('{"ok":true}'));
  app.any('/*', (res) => void res.writeStatus('404 Not Found').end());
  return new Promise((resolve, reject) => {
    // Exclusively (LIBUS_LISTEN_EXCLUSIVE_PORT): uWS shares ports by default, and a second process on
    // a taken metrics port would start and answer every other scrape with its own figures.
    (app as unknown as ListenWithOptions).listen(host, port, 1, (s) => {
      if (!s) return reject(new Error(`cannot listen on ${host}:${port} for metrics: the port is in use, or the address is not available on this machine`));
      resolve({ port: uWS.us_socket_local_port(s), close: () => uWS.us_listen_socket_close(s) });
    });
  });
}
