// One REST request's outcome, for every way a request is answered (Fastify's routes, the trigger
// fast path, the bridge's own refusals): counted in ripple_rest_requests_total{app,status} and
// logged at debug with its status and, for a 4xx or 5xx, the reason the client was told. The query
// string is never logged: it carries the request's signature.
import type { Logger } from 'pino';
import type { AppStore } from '../apps/store.js';
import type { Metrics } from '../metrics/metrics.js';

const APP_PATH_RE = /^\/apps\/([^/]+)/;

/** The app id a request path names, decoded ('' when none or malformed). */
function appIdInPath(path: string): string {
  const m = APP_PATH_RE.exec(path);
  if (!m) return '';
  try {
    return decodeURIComponent(m[1]);
  } catch {
    return '';
  }
}

export class RequestLog {
  constructor(
    private readonly apps: AppStore,
    private readonly metrics: Pick<Metrics, 'restRequests'>,
    private readonly log: Logger,
  ) {}

  /** A request's arrival time, taken only when the log would show it (0 otherwise). */
  started(): number {
    return this.log.isLevelEnabled('debug') ? performance.now() : 0;
  }

  /** Milliseconds since `started()`. */
  since(started: number): number {
    return started === 0 ? 0 : performance.now() - started;
  }

  /** A request answered outside the trigger path: counted when it is one of the app API's (`/apps/...`). */
  answered(method: string, path: string, status: number, ms: number, reason?: string): void {
    // Health checks and scrapes are not REST traffic.
    if (path.startsWith('/apps/')) this.done(appIdInPath(path), method, path, status, ms, reason);
  }

  /** `path` without its query; `ms` from the request's arrival to its answer. */
  done(appId: string, method: string, path: string, status: number, ms: number, reason?: string): void {
    // Only known apps are label values: any id can be typed into a path. (An app the store would have
    // to ask its source for was looked up for the request already, so it answers at once here.)
    const found = this.apps.findById(appId);
    if (found instanceof Promise) found.catch(() => undefined);
    const app = (!(found instanceof Promise) && found?.id) || '';
    let byStatus = this.metrics.restRequests.get(app);
    if (!byStatus) this.metrics.restRequests.set(app, (byStatus = new Map()));
    byStatus.set(status, (byStatus.get(status) ?? 0) + 1);
    if (!this.log.isLevelEnabled('debug')) return;
    this.log.debug({ app: app || undefined, method, path, status, ms: Math.round(ms * 10) / 10, reason: status >= 400 ? reason : undefined }, 'REST request');
  }
}
