// Server → client frames, serialised once (spec §1.5: data of internal events is a JSON string,
// channel events carry the publisher's data verbatim).
import { Events } from './constants.js';

export function connectionEstablished(socketId: string, activityTimeout: number): string {
  return JSON.stringify({
    event: Events.connectionEstablished,
    data: JSON.stringify({ socket_id: socketId, activity_timeout: activityTimeout }),
  });
}

export function errorFrame(code: number | null, message: string, channel?: string): string {
  const f: Record<string, unknown> = { event: Events.error, data: { code, message } };
  if (channel !== undefined) f.channel = channel;
  return JSON.stringify(f);
}

export const pongFrame = JSON.stringify({ event: Events.pong, data: {} });
export const pingFrame = JSON.stringify({ event: Events.ping, data: {} });

export function subscriptionSucceeded(channel: string, data = '{}'): string {
  return JSON.stringify({ event: Events.subscriptionSucceeded, channel, data });
}

export function presenceSucceeded(channel: string, members: Map<string, unknown>): string {
  const ids = [...members.keys()];
  const hash: Record<string, unknown> = {};
  for (const [id, info] of members) hash[id] = info ?? {};
  return subscriptionSucceeded(channel, JSON.stringify({ presence: { ids, hash, count: ids.length } }));
}

export type SubscriptionErrorType = 'AuthError' | 'LimitReached' | 'ServerError' | 'InvalidChannel';

export function subscriptionError(channel: string, type: SubscriptionErrorType, error: string, status: number): string {
  return JSON.stringify({ event: Events.subscriptionError, channel, data: { type, error, status } });
}

/** A channel event; `data` must already be the string to deliver (or the client's value, relayed as is). */
export function channelEvent(event: string, channel: string, data: unknown, userId?: string): string {
  const f: Record<string, unknown> = { event, channel, data };
  if (userId !== undefined) f.user_id = userId;
  return JSON.stringify(f);
}

export function memberAdded(channel: string, userId: string, userInfo: unknown): string {
  return JSON.stringify({
    event: Events.memberAdded,
    channel,
    data: JSON.stringify({ user_id: userId, user_info: userInfo ?? {} }),
  });
}

export function memberRemoved(channel: string, userId: string): string {
  return JSON.stringify({ event: Events.memberRemoved, channel, data: JSON.stringify({ user_id: userId }) });
}

export function subscriptionCount(channel: string, count: number): string {
  return JSON.stringify({
    event: Events.subscriptionCount,
    channel,
    data: JSON.stringify({ subscription_count: count }),
  });
}

export function cacheMiss(channel: string): string {
  return JSON.stringify({ event: Events.cacheMiss, channel });
}

export function signinSuccess(userData: string): string {
  return JSON.stringify({ event: Events.signinSuccess, data: { user_data: userData } });
}

export function watchlistEvents(events: { name: 'online' | 'offline'; user_ids: string[] }[]): string {
  return JSON.stringify({ event: Events.watchlistEvents, data: JSON.stringify({ events }) });
}

/**
 * The frame an opted-in subscription gets (docs/recovery.md): the same frame with its position as one
 * more top-level field, which pusher-js never passes to apps. `frame` ends with '}' (JSON.stringify).
 */
const POSITION_FIELD = ',"ripple_position":"';

export function withPosition(frame: string, position: string): string {
  return `${frame.slice(0, -1)}${POSITION_FIELD}${position}"}`;
}

/** UTF-8 bytes of withPosition(frame, position), from the frame's own (a position is ASCII). */
export function withPositionBytes(frameBytes: number, position: string): number {
  return frameBytes + POSITION_FIELD.length + position.length + 1;
}

export interface RecoveryOutcome {
  /** where the subscription is now; null when the channel has no recovery */
  position: string | null;
  recovered?: boolean;
  reason?: string;
  replayed?: number;
}

export function recoveryOutcome(channel: string, outcome: RecoveryOutcome): string {
  return JSON.stringify({ event: Events.recovery, channel, data: JSON.stringify(outcome) });
}
