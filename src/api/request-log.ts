// One REST request's outcome, for every way a request is answered (Fastify's routes, the trigger
// fast path, the bridge's own refusals): counted in ripple_rest_requests_total{app,status} and
// logged at debug with its status and, for a 4xx or 5xx, the reason the client was told. The query
// string is never logged: it carries the request's signature.
import type { Logger } from 'pino';
import type { AppRegistry } from '../apps/registry.js';
import type { Metrics } from '../metrics/metrics.js';

const APP_PATH_RE = /^\/apps\/([^/]+)/;

/** The app id a request path names, decoded ('' when none or malformed). */
export function appIdInPath(path: string): string {
  const m = APP_PATH_RE.exec(path);
  if (!m) return '';
  try {
    return decodeURIComponent(m[1]);
  } catch {
    return '';
  }
}

type Child = { inc(): void };

export class RequestLog {
  /** `${app}\n${status}` → its counter child: the labels are hashed once, not on every request. */
  private readonly counters = new Map<string, Child>();

  constructor(
    private readonly registry: AppRegistry,
    private readonly metrics: Pick<Metrics, 'restRequests'>,
    private readonly log: Logger,
  ) {}

  /** `path` without its query; `ms` from the request's arrival to its answer. */
  done(appId: string, method: string, path: string, status: number, ms: number, reason?: string): void {
    // Only configured apps are label values: any id can be typed into a path.
    const app = this.registry.findById(appId)?.id ?? '';
    const key = `${app}\n${status}`;
    let counter = this.counters.get(key);
    if (!counter) this.counters.set(key, (counter = this.metrics.restRequests.labels({ app, status: String(status) })));
    counter.inc();
    if (!this.log.isLevelEnabled('debug')) return;
    this.log.debug({ app: app || undefined, method, path, status, ms: Math.round(ms * 10) / 10, reason: status >= 400 ? reason : undefined }, 'REST request');
  }
}
