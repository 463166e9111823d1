// pusher:subscribe / pusher:unsubscribe (spec §3, §4, §5).
import { channelKind, isCacheChannel, isValidChannelName, needsAuth, SERVER_TO_USER_PREFIX } from '../protocol/channels.js';
import { channelAuthString, verifyToken } from '../protocol/signature.js';
import * as frames from '../protocol/frames.js';
import { Codes } from '../protocol/constants.js';
import type { App } from '../apps/app.js';
import { send, type GatewayContext, type Socket } from './context.js';
import type { SocketData } from './socket-data.js';

function reject(ws: Socket, channel: string, type: frames.SubscriptionErrorType, error: string, status: number): void {
  send(ws, frames.subscriptionError(channel, type, error, status));
}

/** Joins the local hub and, for the node's first local socket, registers interest with the backbone. */
function joinLocal(ctx: GatewayContext, ws: Socket, app: App, channel: string): void {
  if (ctx.hub.join(ws, app.id, channel)) ctx.backbone.addInterest(app.id, channel);
}

function leaveLocal(ctx: GatewayContext, ws: Socket | undefined, app: App, channel: string): void {
  if (ctx.hub.leave(ws, app.id, channel)) ctx.backbone.removeInterest(app.id, channel);
}

interface ParsedMember {
  userId: string;
  userInfo: unknown;
}

/** Reads channel_data after its signature has been checked (spec §4.3, §5.4). */
function parseChannelData(app: App, raw: unknown): ParsedMember | { status: number; type: frames.SubscriptionErrorType; error: string } {
  if (typeof raw !== 'string') return { status: Codes.serverError, type: 'ServerError', error: 'Presence channels need channel_data' };
  let v: unknown;
  try {
    v = JSON.parse(raw);
  } catch {
    return { status: Codes.serverError, type: 'ServerError', error: 'channel_data is not valid JSON' };
  }
  const o = v as Record<string, unknown> | null;
  const id = o && typeof o === 'object' ? o.user_id : undefined;
  // Numeric ids are made strings once, everywhere (spec §5.4).
  if ((typeof id !== 'string' && typeof id !== 'number') || id === '') {
    return { status: Codes.serverError, type: 'ServerError', error: 'channel_data must contain a user_id' };
  }
  const userId = String(id);
  if (userId.length > app.maxUserIdLength) {
    return { status: Codes.clientEventRejected, type: 'LimitReached', error: `user_id is longer than ${app.maxUserIdLength} characters` };
  }
  const userInfo = o!.user_info;
  if (userInfo !== undefined && Buffer.byteLength(JSON.stringify(userInfo)) > app.maxPresenceMemberBytes) {
    return {
      status: Codes.clientEventRejected,
      type: 'LimitReached',
      error: `The presence member info is larger than ${app.maxPresenceMemberSizeInKb} KB`,
    };
  }
  return { userId, userInfo };
}

/** channel_data equivalent of a signed-in user: its id and its user_data's user_info. */
function signedInChannelData(id: string, userData: string): string {
  let info: unknown;
  try {
    info = (JSON.parse(userData) as { user_info?: unknown }).user_info;
  } catch {
    info = undefined;
  }
  return JSON.stringify(info === undefined ? { user_id: id } : { user_id: id, user_info: info });
}

export function subscribe(ctx: GatewayContext, ws: Socket, data: Record<string, unknown>): void {
  const d = ws.getUserData();
  const app = d.app;
  const channel = data.channel;
  if (typeof channel !== 'string' || channel === '') {
    send(ws, frames.errorFrame(null, 'pusher:subscribe needs a channel name'));
    return;
  }
  if (channel.length > app.maxChannelNameLength) {
    return reject(ws, channel, 'LimitReached', `The channel name is longer than the allowed ${app.maxChannelNameLength} characters.`, Codes.unauthorized);
  }
  if (!isValidChannelName(channel)) {
    return reject(ws, channel, 'InvalidChannel', 'Invalid channel name: see https://pusher.com/docs/channels/using_channels/channels#channel-naming-conventions', Codes.unauthorized);
  }
  const kind = channelKind(channel);

  if (d.channels.has(channel)) {
    // Idempotent (spec §3.6): confirm again, no side effects.
    if (kind === 'presence') {
      ctx.store.members(app.id, channel).then(
        (m) => send(ws, frames.presenceSucceeded(channel, m)),
        () => send(ws, frames.subscriptionSucceeded(channel)),
      );
    } else send(ws, frames.subscriptionSucceeded(channel));
    return;
  }

  if (kind === 'user') {
    // Only the connection signed in as exactly this user (spec §4.7; Soketi lets anyone in).
    if (!d.user || channel !== SERVER_TO_USER_PREFIX + d.user.id) {
      return reject(ws, channel, 'AuthError', 'The connection is not signed in as this user', Codes.unauthorized);
    }
    send(ws, frames.subscriptionSucceeded(channel));
    return;
  }

  const channelData = data.channel_data;
  if (needsAuth(kind)) {
    // Private channels sign channel_data too when a client sends it (spec §4.2).
    const message = channelAuthString(d.socketId, channel, typeof channelData === 'string' ? channelData : undefined);
    if (!verifyToken(app.key, app.secret, data.auth, message)) {
      return reject(ws, channel, 'AuthError', 'Invalid signature', 401);
    }
    if (d.signinTimer) {
      // An authorized subscription counts as authenticated for the sign-in requirement (as Soketi).
      clearTimeout(d.signinTimer);
      d.signinTimer = undefined;
    }
  }

  if (kind !== 'presence') {
    d.channels.set(channel, {});
    joinLocal(ctx, ws, app, channel);
    send(ws, frames.subscriptionSucceeded(channel));
    if (isCacheChannel(channel)) sendCached(ctx, ws, app, channel);
    ctx.store.addSubscription(app.id, channel).then(
      (count) => afterCountChange(ctx, app, channel, count, count === 1 ? 'occupied' : undefined),
      (err) => ctx.log.warn({ err, app: app.id, channel }, 'subscription count not recorded'),
    );
    return;
  }

  // pusher-js (>= 7.4) subscribes a signed-in connection without channel_data when the app's auth
  // endpoint signs only socket_id:channel; the member is then the signed-in user (spec §4.3).
  const member =
    channelData === undefined && d.user
      ? parseChannelData(app, signedInChannelData(d.user.id, d.user.userData))
      : parseChannelData(app, channelData);
  if ('status' in member) return reject(ws, channel, member.type, member.error, member.status);

  // Record the subscription before awaiting, so a close in the meantime leaves in order after this join.
  d.channels.set(channel, { userId: member.userId });
  joinLocal(ctx, ws, app, channel);
  const undo = () => {
    if (d.channels.get(channel)?.userId !== member.userId) return; // already left (unsubscribe or close)
    d.channels.delete(channel);
    leaveLocal(ctx, d.closed ? undefined : ws, app, channel);
    // The store may have recorded the join even if it could not answer; undo it either way (a leave
    // of a socket the store does not hold changes nothing).
    void leaveStore(ctx, app, channel, d.socketId, member.userId, { silent: true }).catch((err) => ctx.log.warn({ err, app: app.id, channel }, 'undo of a refused join failed'));
  };
  // Count and join in one atomic store step: occupied and member_added of a first socket are due
  // together, on this node, in this order (webhook ordering across nodes depends on it).
  ctx.store.subscribePresence(app.id, channel, d.socketId, member).then((join) => {
    const count = join.count;
    if (join.added && join.members.size > app.maxPresenceMembersPerChannel) {
      // Over the member limit (spec §5.4): undo and refuse; nobody was told about this member.
      undo();
      return reject(ws, channel, 'LimitReached', `The presence channel has reached its limit of ${app.maxPresenceMembersPerChannel} members`, Codes.overCapacity);
    }
    if (count === 1) ctx.webhooks.emit(app, { name: 'channel_occupied', channel });
    if (join.added) {
      ctx.backbone.publish(app.id, channel, frames.memberAdded(channel, member.userId, member.userInfo), d.socketId);
      ctx.webhooks.emit(app, { name: 'member_added', channel, user_id: member.userId });
    }
    send(ws, frames.presenceSucceeded(channel, join.members));
    if (isCacheChannel(channel)) sendCached(ctx, ws, app, channel);
  }, (err) => {
    ctx.log.warn({ err, app: app.id, channel }, 'presence join failed');
    undo();
    reject(ws, channel, 'ServerError', 'Presence state is unavailable, try again', Codes.serverError);
  });
}

/** Right after subscription_succeeded: the cached event, or pusher:cache_miss and its webhook (spec §7). */
function sendCached(ctx: GatewayContext, ws: Socket, app: App, channel: string): void {
  ctx.cache.get(app.id, channel).then(
    (hit) => {
      if (hit) return send(ws, frames.channelEvent(hit.ev.event, channel, hit.ev.data));
      send(ws, frames.cacheMiss(channel));
      ctx.webhooks.emit(app, { name: 'cache_miss', channel });
    },
    (err) => ctx.log.warn({ err, app: app.id, channel }, 'cache lookup failed'),
  );
}

/** Webhooks and subscription_count broadcasts after a channel's cluster-wide count changed. */
function afterCountChange(ctx: GatewayContext, app: App, channel: string, count: number, transition?: 'occupied' | 'vacated'): void {
  if (transition === 'occupied') ctx.webhooks.emit(app, { name: 'channel_occupied', channel });
  if (app.enableSubscriptionCount && channelKind(channel) !== 'presence') ctx.counts.changed(app, channel, count);
  if (transition === 'vacated') ctx.webhooks.emit(app, { name: 'channel_vacated', channel });
}

async function leaveStore(
  ctx: GatewayContext,
  app: App,
  channel: string,
  socketId: string,
  userId: string | undefined,
  opts: { silent?: boolean } = {},
): Promise<void> {
  const { last, count } =
    userId === undefined
      ? { last: false, count: await ctx.store.removeSubscription(app.id, channel) }
      : await ctx.store.unsubscribePresence(app.id, channel, socketId, userId);
  // member_removed before channel_vacated (spec §12.17).
  if (last && userId !== undefined && !opts.silent) {
    ctx.backbone.publish(app.id, channel, frames.memberRemoved(channel, userId));
    ctx.webhooks.emit(app, { name: 'member_removed', channel, user_id: userId });
  }
  // A refused join was never announced, so its undo announces nothing either.
  if (opts.silent) return;
  afterCountChange(ctx, app, channel, count, count === 0 ? 'vacated' : undefined);
}

export function unsubscribe(ctx: GatewayContext, ws: Socket | undefined, socketData: SocketData, channel: string): void {
  const sub = socketData.channels.get(channel);
  if (!sub) return; // unknown unsubscribe: ignored (spec §3.6)
  socketData.channels.delete(channel);
  const app = socketData.app;
  leaveLocal(ctx, ws, app, channel);
  leaveStore(ctx, app, channel, socketData.socketId, sub.userId).catch((err) =>
    ctx.log.warn({ err, app: app.id, channel }, 'leave not recorded'),
  );
}
