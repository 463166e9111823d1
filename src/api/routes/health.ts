// Unsigned operator routes: liveness, readiness and the Prometheus scrape (unless it has its own port).
import type { FastifyInstance } from 'fastify';
import type { Metrics } from '../../metrics/metrics.js';

export interface HealthDeps {
  /** undefined when a separate metrics port serves the scrape */
  metrics?: Metrics;
  /** false while the node drains or cannot reach the cluster */
  isReady: () => boolean;
}

export async function healthRoutes(fastify: FastifyInstance, deps: HealthDeps): Promise<void> {
  fastify.get('/health', async () => ({ ok: true }));
  fastify.get('/ready', async (_req, reply) => {
    const ready = deps.isReady();
    return reply.status(ready ? 200 : 503).send({ ready });
  });
  const metrics = deps.metrics;
  if (!metrics) return;
  fastify.get('/metrics', async (_req, reply) => {
    reply.header('content-type', metrics.contentType);
    return metrics.scrape();
  });
}
