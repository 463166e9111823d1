// Unsigned operator routes: liveness, readiness and the Prometheus scrape (unless it has its own port).
import type { FastifyInstance } from 'fastify';
import type { Metrics } from '../../metrics/metrics.js';

export interface HealthDeps {
  /** undefined when a separate metrics port serves the scrape */
  metrics?: Metrics;
  /** false while the node drains or cannot reach the cluster */
  isReady: () => boolean;
  /**
   * Whether the app database answers (absent for apps from the config). Shown by /ready, which does
   * not fail for it: loaded apps keep working, and every node shares the one database, so taking
   * the nodes out of a load balancer would not help.
   */
  appStoreUp?: () => boolean;
}

export async function healthRoutes(fastify: FastifyInstance, deps: HealthDeps): Promise<void> {
  fastify.get('/health', async () => ({ ok: true }));
  fastify.get('/ready', async (_req, reply) => {
    const ready = deps.isReady();
    const appStore = deps.appStoreUp && (deps.appStoreUp() ? 'up' : 'unreachable');
    return reply.status(ready ? 200 : 503).send(appStore ? { ready, appStore } : { ready });
  });
  const metrics = deps.metrics;
  if (!metrics) return;
  fastify.get('/metrics', async (_req, reply) => {
    reply.header('content-type', metrics.contentType);
    return metrics.scrape();
  });
}
