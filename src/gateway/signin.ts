// pusher:signin (spec §4.6): the signature over socket_id::user::user_data, then the socket is the
// user's: it receives #server-to-user-<id> events, terminate_connections reaches it, and its
// watchlist (spec §4.8) follows the online state of other users cluster-wide.
import { Codes } from '../protocol/constants.js';
import { SERVER_TO_USER_PREFIX } from '../protocol/channels.js';
import * as frames from '../protocol/frames.js';
import { signinAuthString, verifyToken } from '../protocol/signature.js';
import type { App } from '../apps/app.js';
import { send, type GatewayContext, type Socket } from './context.js';
import type { SocketData } from './socket-data.js';

const MAX_WATCHLIST = 100;

/** Internal presence set of signed-in users: a user is online while signed in on ≥ 1 socket. */
export const ONLINE_CHANNEL = '#online';
/** Internal channel that carries a user's online/offline changes to the sockets watching them. */
export const watchChannel = (userId: string) => `#watchlist-${userId}`;

function refuse(ws: Socket, message: string): void {
  send(ws, frames.errorFrame(Codes.unauthorized, message));
  ws.end(Codes.unauthorized, message);
}

function joinTopic(ctx: GatewayContext, ws: Socket, app: App, channel: string): void {
  if (ctx.hub.join(ws, app.id, channel)) ctx.backbone.addInterest(app.id, channel);
}

function leaveTopic(ctx: GatewayContext, app: App, channel: string): void {
  if (ctx.hub.leave(undefined, app.id, channel)) ctx.backbone.removeInterest(app.id, channel);
}

/** Announces a user's change of online state to the sockets watching them, on every node. */
export function announce(ctx: GatewayContext, appId: string, userId: string, name: 'online' | 'offline'): void {
  ctx.backbone.publish(appId, watchChannel(userId), frames.watchlistEvents([{ name, user_ids: [userId] }]));
}

export function signin(ctx: GatewayContext, ws: Socket, data: Record<string, unknown>): void {
  const d = ws.getUserData();
  const app = d.app;
  const userData = data.user_data;
  if (typeof userData !== 'string' || !verifyToken(app.key, app.secret, data.auth, signinAuthString(d.socketId, userData))) {
    return refuse(ws, 'Connection not authorized.');
  }
  let parsed: Record<string, unknown> | null;
  try {
    parsed = JSON.parse(userData);
  } catch {
    return refuse(ws, 'The user data must be a JSON object.');
  }
  const id = parsed?.id;
  if (typeof id !== 'string' || id === '') return refuse(ws, 'The returned user data must contain the "id" field.');
  if (d.user) {
    if (d.user.id !== id) return refuse(ws, 'The connection is already signed in as another user.');
    send(ws, frames.signinSuccess(userData));
    return;
  }
  // Ids are strings on the wire; numbers are accepted and stringified, as presence user_ids are.
  let watchlist = Array.isArray(parsed!.watchlist)
    ? (parsed!.watchlist as unknown[])
        .map((u) => (typeof u === 'number' && Number.isFinite(u) ? String(u) : u))
        .filter((u): u is string => typeof u === 'string' && u !== '')
    : [];
  const overLimit = watchlist.length > MAX_WATCHLIST;
  if (overLimit) watchlist = watchlist.slice(0, MAX_WATCHLIST);

  d.user = { id, userData, watchlist };
  if (d.signinTimer) {
    clearTimeout(d.signinTimer);
    d.signinTimer = undefined;
  }
  // Signed-in sockets receive their user's events even before subscribing to the channel (spec §4.7).
  joinTopic(ctx, ws, app, SERVER_TO_USER_PREFIX + id);
  for (const watched of watchlist) joinTopic(ctx, ws, app, watchChannel(watched));
  send(ws, frames.signinSuccess(userData));
  if (overLimit) send(ws, frames.errorFrame(Codes.serverError, `Watchlist holds more than ${MAX_WATCHLIST} users; only the first ${MAX_WATCHLIST} are watched`));

  ctx.store.joinPresence(app.id, ONLINE_CHANNEL, d.socketId, { userId: id, userInfo: parsed!.user_info }).then(
    (join) => {
      if (join.added) announce(ctx, app.id, id, 'online');
      if (watchlist.length === 0) return;
      // The current state of the watchlist first, then changes (spec §4.8).
      const online = watchlist.filter((u) => join.members.has(u));
      const offline = watchlist.filter((u) => !join.members.has(u));
      const events: { name: 'online' | 'offline'; user_ids: string[] }[] = [];
      if (online.length) events.push({ name: 'online', user_ids: online });
      if (offline.length) events.push({ name: 'offline', user_ids: offline });
      send(ws, frames.watchlistEvents(events));
    },
    (err) => ctx.log.warn({ err, app: app.id }, 'online state not recorded'),
  );
}

/** Called when a signed-in socket closes. */
export function signout(ctx: GatewayContext, d: SocketData): void {
  const user = d.user!;
  const app = d.app;
  leaveTopic(ctx, app, SERVER_TO_USER_PREFIX + user.id);
  for (const watched of user.watchlist) leaveTopic(ctx, app, watchChannel(watched));
  ctx.store.leavePresence(app.id, ONLINE_CHANNEL, d.socketId, user.id).then(
    (last) => {
      if (last) announce(ctx, app.id, user.id, 'offline');
    },
    (err) => ctx.log.warn({ err, app: app.id }, 'offline state not recorded'),
  );
}
