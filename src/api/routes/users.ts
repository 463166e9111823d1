// POST /apps/<id>/users/<user_id>/terminate_connections (spec §4.9): every node closes the user's sockets.
import type { FastifyInstance } from 'fastify';
import type { Backbone } from '../../backbone/backbone.js';
import { HttpError } from '../errors.js';
import { appOf } from '../signed-request.js';

export async function userRoutes(fastify: FastifyInstance, deps: { backbone: Backbone }): Promise<void> {
  fastify.post('/apps/:appId/users/:userId/terminate_connections', async (req) => {
    const app = appOf(req);
    const userId = (req.params as { userId: string }).userId;
    // No connection can be signed in with a longer id (spec §4.6).
    if (userId.length > app.maxUserIdLength) throw new HttpError(400, `The user id is longer than the allowed ${app.maxUserIdLength} characters`);
    deps.backbone.broadcastCommand({ type: 'terminate-user', appId: app.id, userId });
    return {};
  });
}
