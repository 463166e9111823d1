// Channel queries (spec §9.3): GET channels, channels/<name>, channels/<name>/users. Reads count
// against the app's read budget.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ChannelCache } from '../../cache/channel-cache.js';
import { formatPosition, parsePosition, policyOf, type ChannelHistory } from '../../history/history.js';
import type { RateWindows } from '../../limits/rate-windows.js';
import type { PresenceStore } from '../../presence/store.js';
import { channelKind, isCacheChannel, isInternalChannel, isValidChannelName } from '../../protocol/channels.js';
import { HttpError } from '../errors.js';
import { spend } from '../rate-limit.js';
import { appOf } from '../signed-request.js';
import type { ChannelAttrs } from '../trigger.js';
import { parseInfo } from '../validate.js';

export interface ChannelRouteDeps {
  store: PresenceStore;
  cache: ChannelCache;
  history: ChannelHistory;
  rates: RateWindows;
}

/** Events one history page holds at most (docs/recovery.md). */
const HISTORY_PAGE = 100;

/** The channel of the path, under the rules a subscription obeys (spec §3.1). */
const channelParam = (req: FastifyRequest): string => {
  const name = (req.params as { channelName: string }).channelName;
  const max = appOf(req).maxChannelNameLength;
  if (name.length > max) throw new HttpError(400, `The channel name is longer than the allowed ${max} characters`);
  if (!isValidChannelName(name)) throw new HttpError(400, `Invalid channel name ${JSON.stringify(name)}`);
  return name;
};

export async function channelRoutes(fastify: FastifyInstance, deps: ChannelRouteDeps): Promise<void> {
  const { store, cache } = deps;
  fastify.addHook('preHandler', async (req, reply) => spend(deps.rates, appOf(req), (n, v) => void reply.header(n, v), 'read', 1));

  fastify.get('/apps/:appId/channels', async (req) => {
    const app = appOf(req);
    const q = (req.pusherQuery ?? {}) as { filter_by_prefix?: string; info?: string };
    const prefix = q.filter_by_prefix || undefined;
    const info = q.info ? parseInfo(q.info, ['user_count', 'subscription_count']) : [];
    if (info.includes('user_count') && !(prefix && channelKind(prefix) === 'presence')) {
      throw new HttpError(400, 'info=user_count needs filter_by_prefix=presence-');
    }
    const channels: Record<string, ChannelAttrs> = {};
    for (const [name, c] of await store.channels(app.id, prefix)) {
      if (isInternalChannel(name)) continue; // the server's own channels are not the app's
      const a: ChannelAttrs = {};
      if (info.includes('user_count')) a.user_count = c.userCount;
      if (info.includes('subscription_count') && app.enableSubscriptionCount && channelKind(name) !== 'presence') a.subscription_count = c.subscriptionCount;
      channels[name] = a;
    }
    return { channels };
  });

  fastify.get('/apps/:appId/channels/:channelName', async (req) => {
    const app = appOf(req);
    const channel = channelParam(req);
    const q = (req.pusherQuery ?? {}) as { info?: string };
    const info = q.info ? parseInfo(q.info, ['user_count', 'subscription_count', 'cache']) : [];
    const presence = channelKind(channel) === 'presence';
    if (info.includes('user_count') && !presence) throw new HttpError(400, 'user_count is only available for presence channels');
    if (info.includes('subscription_count') && presence) throw new HttpError(400, 'subscription_count is not available for presence channels');
    if (info.includes('cache') && !isCacheChannel(channel)) throw new HttpError(400, 'cache is only available for cache channels');
    const count = await store.subscriptionCount(app.id, channel);
    const out: Record<string, unknown> = { occupied: count > 0 };
    // Counts only for occupied channels (an empty one is {"occupied":false}), and subscription_count
    // only where the app has the feature on (spec §9.3).
    if (count > 0 && info.includes('user_count')) out.user_count = await store.userCount(app.id, channel);
    if (count > 0 && info.includes('subscription_count') && app.enableSubscriptionCount) out.subscription_count = count;
    if (info.includes('cache')) {
      const hit = await cache.get(app.id, channel);
      out.cache = hit ? { data: hit.ev.data, ttl: Math.ceil(hit.ttlMs / 1000) } : null;
    }
    return out;
  });

  fastify.get('/apps/:appId/channels/:channelName/users', async (req) => {
    const app = appOf(req);
    const channel = channelParam(req);
    if (channelKind(channel) !== 'presence') throw new HttpError(400, 'Users are only available for presence channels');
    const members = await store.members(app.id, channel);
    return { users: [...members.keys()].map((id) => ({ id })) };
  });

  // Message recovery's history (docs/recovery.md), for backends and late joiners: pages by position.
  fastify.get('/apps/:appId/channels/:channelName/history', async (req) => {
    const app = appOf(req);
    const channel = channelParam(req);
    const policy = policyOf(app, channel);
    if (!policy) throw new HttpError(404, `Channel ${channel} keeps no history (the app's recovery settings)`);
    const q = (req.pusherQuery ?? {}) as { after?: string; limit?: string };
    const after = q.after === undefined || q.after === '' ? undefined : parsePosition(q.after);
    if (q.after && !after) throw new HttpError(400, 'after must be a position "<epoch>:<serial>"');
    const limit = q.limit === undefined ? HISTORY_PAGE : Number(q.limit);
    if (!Number.isInteger(limit) || limit < 1 || limit > HISTORY_PAGE) throw new HttpError(400, `limit must be an integer from 1 to ${HISTORY_PAGE}`);
    const page = await deps.history.read(app.id, channel, after?.serial ?? 0, limit, policy);
    if (after && (after.epoch !== page.epoch || after.serial > page.last)) throw new HttpError(410, 'The position is from an earlier numbering of the channel: read from the start');
    if (after && after.serial < page.last && after.serial + 1 < page.first) throw new HttpError(410, 'Events after the position are no longer kept');
    const events = page.events.map((ev) => {
      const f = JSON.parse(ev.frame) as { event: string; data: unknown; user_id?: string };
      return {
        position: formatPosition({ epoch: page.epoch, serial: ev.serial }),
        event: f.event,
        data: f.data,
        ...(f.user_id !== undefined ? { user_id: f.user_id } : {}),
        published_at: ev.t,
      };
    });
    const lastSent = page.events.at(-1)?.serial;
    return {
      position: formatPosition({ epoch: page.epoch, serial: page.last }),
      events,
      next: lastSent !== undefined && lastSent < page.last ? formatPosition({ epoch: page.epoch, serial: lastSent }) : null,
    };
  });
}
