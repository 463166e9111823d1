// pusher:subscribe and pusher:unsubscribe (spec §3, §4, §5): the checks each channel kind needs
// (name, signature, channel_data), then the channel owner does the joining. Each refusal has a
// reason, logged and counted (channels/refusal.ts).
import { signedWithAcceptedSecret, type App } from '../apps/app.js';
import { channelKind, isValidChannelName, SERVER_TO_USER_PREFIX } from '../protocol/channels.js';
import { subscriptions, type RecoveryRequest } from '../channels/member.js';
import { refuseSubscription, type SubscriptionRefusal } from '../channels/refusal.js';
import { parsePosition } from '../history/history.js';
import { Codes, RECOVERY_REQUEST_FIELD } from '../protocol/constants.js';
import * as frames from '../protocol/frames.js';
import { channelAuthString, verifyToken } from '../protocol/signature.js';
import { MAX_DATA_DEPTH, nestedDeeperThan } from '../protocol/parse.js';
import type { PresenceMember } from '../presence/store.js';
import { diagnoseChannelAuth } from '../console/doctor.js';
import type { Session } from './session.js';
import type { SessionDeps } from './deps.js';


export function subscribe(deps: SessionDeps, s: Session, data: Record<string, unknown>): void {
  const app = s.app;
  const channel = data.channel;
  if (typeof channel !== 'string' || channel === '') return s.send(frames.errorFrame(null, 'pusher:subscribe needs a channel name'));
  if (channel.length > app.maxChannelNameLength) {
    return refuseSubscription(deps, s, channel, {
      reason: 'name_too_long',
      type: 'LimitReached',
      error: `The channel name is longer than the allowed ${app.maxChannelNameLength} characters.`,
      status: Codes.unauthorized,
    });
  }
  if (!isValidChannelName(channel)) {
    return refuseSubscription(deps, s, channel, {
      reason: 'invalid_name',
      type: 'InvalidChannel',
      error: 'Invalid channel name: see https://pusher.com/docs/channels/using_channels/channels#channel-naming-conventions',
      status: Codes.unauthorized,
    });
  }
  if (subscriptions.get(s.subs, channel)) return deps.channels.confirmAgain(s, channel);
  // One socket holding tens of thousands of channels costs the node memory for every other client.
  // Refused before anything is recorded; 4100 (over capacity, retry later) as for a full presence
  // channel (spec §3.5): the client may subscribe again once it has unsubscribed elsewhere.
  if (subscriptions.size(s.subs) >= app.maxChannelsPerConnection) {
    return refuseSubscription(deps, s, channel, {
      reason: 'channel_limit',
      type: 'LimitReached',
      error: `The connection is subscribed to the allowed ${app.maxChannelsPerConnection} channels already.`,
      status: Codes.overCapacity,
    });
  }
  const recovery = recoveryRequest(data);
  switch (channelKind(channel)) {
    case 'public':
      return deps.channels.subscribe(s, channel, recovery);
    case 'private':
    case 'encrypted':
      if (!authorized(s, channel, data)) return refuseSubscription(deps, s, channel, badSignature, authDoctor(deps, s, channel, data));
      return deps.channels.subscribe(s, channel, recovery);
    case 'presence':
      return subscribePresence(deps, s, channel, data, recovery);
    case 'user':
      return subscribeUser(deps, s, channel, recovery);
  }
}

const SOCKET_ID_RE = /^\d{1,20}\.\d{1,20}$/;
const MAX_EARLIER_SOCKET_IDS = 16;

/** The subscribe's opt-in to message recovery (docs/recovery.md), if any. */
function recoveryRequest(data: Record<string, unknown>): RecoveryRequest | undefined {
  const r = data[RECOVERY_REQUEST_FIELD];
  if (!r || typeof r !== 'object' || Array.isArray(r)) return undefined;
  const o = r as { position?: unknown; socket_ids?: unknown };
  // A position that is not one can never be recovered from: it stands for an unknown epoch.
  const position = o.position === undefined || o.position === null ? undefined : (parsePosition(o.position) ?? { epoch: '', serial: 0 });
  const socketIds = Array.isArray(o.socket_ids)
    ? o.socket_ids.filter((id): id is string => typeof id === 'string' && SOCKET_ID_RE.test(id)).slice(0, MAX_EARLIER_SOCKET_IDS)
    : [];
  return { position, socketIds };
}

export function unsubscribe(deps: SessionDeps, s: Session, data: Record<string, unknown>): void {
  if (typeof data.channel !== 'string') return s.send(frames.errorFrame(null, 'pusher:unsubscribe needs a channel'));
  deps.channels.unsubscribe(s, data.channel);
}

const badSignature: SubscriptionRefusal = { reason: 'auth', type: 'AuthError', error: 'Invalid signature', status: 401 };

/** The doctor's look at a bad subscription signature, only while the console watches the app (else nothing is built). */
function authDoctor(deps: SessionDeps, s: Session, channel: string, data: Record<string, unknown>) {
  if (!deps.tap.on || !deps.tap.watches(s.app.id)) return undefined;
  const channelData = typeof data.channel_data === 'string' ? data.channel_data : undefined;
  return () => diagnoseChannelAuth(s.app, deps.tap.peers(), s.socketId, channel, channelData, data.auth);
}

/** The subscription's signature (spec §4.2, §4.3); private channels sign channel_data too when a client sends it. */
function authorized(s: Session, channel: string, data: Record<string, unknown>): boolean {
  const channelData = typeof data.channel_data === 'string' ? data.channel_data : undefined;
  const signed = channelAuthString(s.socketId, channel, channelData);
  if (!signedWithAcceptedSecret(s.app, (secret) => verifyToken(s.app.key, secret, data.auth, signed))) return false;
  // An authorized subscription counts as authenticated for the sign-in requirement (as Soketi).
  s.authenticated();
  return true;
}

function subscribePresence(deps: SessionDeps, s: Session, channel: string, data: Record<string, unknown>, recovery?: RecoveryRequest): void {
  if (!authorized(s, channel, data)) return refuseSubscription(deps, s, channel, badSignature, authDoctor(deps, s, channel, data));
  // pusher-js (>= 7.4) subscribes a signed-in connection without channel_data when the app's auth
  // endpoint signs only socket_id:channel; the member is then the signed-in user (spec §4.3).
  const member = data.channel_data === undefined && s.user ? presenceMember(s.app, s.user.id, s.user.userInfo) : parseChannelData(s.app, data.channel_data);
  if ('status' in member) return refuseSubscription(deps, s, channel, member);
  deps.channels.subscribePresence(s, channel, member, recovery);
}

/** Only the connection signed in as exactly this user (spec §4.7; Soketi lets anyone in). */
function subscribeUser(deps: SessionDeps, s: Session, channel: string, recovery?: RecoveryRequest): void {
  if (!s.user || channel !== SERVER_TO_USER_PREFIX + s.user.id) {
    return refuseSubscription(deps, s, channel, { reason: 'not_signed_in', type: 'AuthError', error: 'The connection is not signed in as this user', status: Codes.unauthorized });
  }
  deps.channels.subscribeUser(s, channel, recovery);
}

/** Reads channel_data after its signature has been checked (spec §4.3, §5.4). */
function parseChannelData(app: App, raw: unknown): PresenceMember | SubscriptionRefusal {
  if (typeof raw !== 'string') return { reason: 'channel_data', status: Codes.serverError, type: 'ServerError', error: 'Presence channels need channel_data' };
  let v: unknown;
  try {
    v = JSON.parse(raw);
  } catch {
    return { reason: 'channel_data', status: Codes.serverError, type: 'ServerError', error: 'channel_data is not valid JSON' };
  }
  const o = v as Record<string, unknown> | null;
  const id = o && typeof o === 'object' ? o.user_id : undefined;
  // Numeric ids are made strings once, everywhere (spec §5.4).
  if ((typeof id !== 'string' && typeof id !== 'number') || id === '') {
    return { reason: 'channel_data', status: Codes.serverError, type: 'ServerError', error: 'channel_data must contain a user_id' };
  }
  return presenceMember(app, String(id), o!.user_info);
}

/** The presence limits on a member (spec §5.4): user id length, and user_info nesting and size. */
function presenceMember(app: App, userId: string, userInfo: unknown): PresenceMember | SubscriptionRefusal {
  if (userId.length > app.maxUserIdLength) {
    return { reason: 'user_id_too_long', status: Codes.clientEventRejected, type: 'LimitReached', error: `user_id is longer than ${app.maxUserIdLength} characters` };
  }
  // Checked before the size, which serialises it: JSON.stringify overflows the stack on deep nesting.
  if (nestedDeeperThan(userInfo, MAX_DATA_DEPTH)) {
    return { reason: 'member_too_large', status: Codes.clientEventRejected, type: 'LimitReached', error: `The presence member info is nested deeper than ${MAX_DATA_DEPTH} levels` };
  }
  if (userInfo !== undefined && Buffer.byteLength(JSON.stringify(userInfo)) > app.maxPresenceMemberBytes) {
    return { reason: 'member_too_large', status: Codes.clientEventRejected, type: 'LimitReached', error: `The presence member info is larger than ${app.maxPresenceMemberSizeInKb} KB` };
  }
  return { userId, userInfo };
}

