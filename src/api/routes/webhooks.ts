// Operator routes (not part of Pusher's API), signed like every other call: webhooks that failed for
// good, and putting them back on their endpoint's queue.
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { HttpError } from '../errors.js';
import { appOf } from '../signed-request.js';

export interface DeadLetters {
  listDead(appId: string): Promise<unknown[]>;
  replayDead(appId: string): Promise<number>;
}

export async function webhookRoutes(fastify: FastifyInstance, deps: { deadLetters: DeadLetters; log: Logger }): Promise<void> {
  const stored = async <T>(fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (err) {
      deps.log.warn({ err }, 'dead-letter store unavailable');
      throw new HttpError(503, 'Webhook state is unavailable, try again');
    }
  };
  fastify.get('/apps/:appId/webhooks/dead_letters', async (req) => ({
    dead_letters: await stored(() => deps.deadLetters.listDead(appOf(req).id)),
  }));
  fastify.post('/apps/:appId/webhooks/dead_letters/replay', async (req) => ({
    replayed_events: await stored(() => deps.deadLetters.replayDead(appOf(req).id)),
  }));
}
