// POST /apps/<id>/events and batch_events through Fastify (the uWS bridge usually takes the fast path).
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { SetHeader } from '../rate-limit.js';
import { appOf } from '../signed-request.js';
import type { Trigger } from '../trigger.js';

const headerOf = (reply: FastifyReply): SetHeader => (name, value) => void reply.header(name, value);

export async function eventRoutes(fastify: FastifyInstance, deps: { trigger: Trigger }): Promise<void> {
  fastify.post('/apps/:appId/events', async (req, reply) => deps.trigger.events(appOf(req), req.body, headerOf(reply)));
  fastify.post('/apps/:appId/batch_events', async (req, reply) => deps.trigger.batch(appOf(req), req.body, headerOf(reply)));
}
