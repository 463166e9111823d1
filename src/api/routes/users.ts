// POST /apps/<id>/users/<user_id>/terminate_connections (spec §4.9): every node closes the user's sockets.
import type { FastifyInstance } from 'fastify';
import type { Backbone } from '../../backbone/backbone.js';
import { appOf } from '../signed-request.js';

export async function userRoutes(fastify: FastifyInstance, deps: { backbone: Backbone }): Promise<void> {
  fastify.post('/apps/:appId/users/:userId/terminate_connections', async (req) => {
    const userId = (req.params as { userId: string }).userId;
    deps.backbone.broadcastCommand({ type: 'terminate-user', appId: appOf(req).id, userId });
    return {};
  });
}
