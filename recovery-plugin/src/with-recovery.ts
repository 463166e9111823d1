// Gives a stock pusher-js 8 client ripple's message recovery (the server's docs/recovery.md): every
// subscribe carries the last position seen, raw frames keep it up to date, duplicates never reach the
// app, and a gap the server could not fill becomes a channel event. Frames of subscriptions the
// server answered with `position: null` pass through untouched.
import { CONTINUITY_LOST_EVENT, RECOVERY_REQUEST_FIELD, SUBSCRIBE_EVENT } from './protocol.js';
import type { DecodedEvent, Dispatcher, PusherLike } from './pusher-shape.js';
import { RecoveryState, type FrameVerdict } from './recovery-state.js';
import { RecoveryStore, type StorageOption } from './storage.js';

export interface RecoveryOptions {
  /**
   * Keep positions across page reloads: 'session' for window.sessionStorage, or any object with
   * getItem/setItem/removeItem. Without it positions live as long as the Pusher instance.
   */
  storage?: StorageOption;
}

/** The payload of the `ripple:continuity_lost` channel event. */
export interface ContinuityLost {
  /** The server's reason: epoch_changed, trimmed, too_many, unavailable or disabled (docs/recovery.md). */
  reason: string;
}

const recovering = new WeakSet<object>();

/**
 * Wraps an existing pusher-js instance (before or after it connected) and returns it. Channels it
 * subscribed before are tracked from now on: their first resubscribe cannot know what they missed, so
 * it reports `ripple:continuity_lost` (reason `untracked`).
 */
export function withRecovery<P extends PusherLike>(pusher: P, options: RecoveryOptions = {}): P {
  if (recovering.has(pusher)) throw new Error('withRecovery: this Pusher instance already has recovery');
  const state = new RecoveryState(RecoveryStore.open(options.storage, pusher.key));
  recovering.add(pusher);
  // Once connected, the subscribes it sent went without the opt-in (a channel subscribed while it never
  // connected subscribes through the wrapper below, at its first connection).
  if (pusher.connection.socket_id !== undefined) {
    for (const channel of pusher.allChannels()) state.untracked(channel.name);
    const userChannel = pusher.user.serverToUserChannel;
    if (userChannel) state.untracked(userChannel.name);
  }

  const sendEvent = pusher.send_event;
  pusher.send_event = function (event: string, data: any, channel?: string) {
    // Channel.subscribe() and the user channel send their subscribe through here, for every
    // (re)subscribe; the caller's object is left as it was.
    if (event === SUBSCRIBE_EVENT && data && typeof data.channel === 'string') {
      data = { ...data, [RECOVERY_REQUEST_FIELD]: state.request(data.channel) };
    }
    return sendEvent.call(pusher, event, data, channel);
  };

  const unsubscribe = pusher.unsubscribe;
  pusher.unsubscribe = function (channel: string) {
    unsubscribe.call(pusher, channel);
    // A subscription still pending is only cancelled: pusher-js unsubscribes again once it succeeds.
    if (!pusher.channel(channel)) state.forget(channel);
  };

  const manager = pusher.connection;
  // The raw frame's verdict, from the transport, for the decoded event the manager emits next: the
  // transport's global callbacks run before the connection decodes, and all of it in one call stack.
  let pending: FrameVerdict | undefined;
  const readRaw = (event: string, message: { data?: unknown } | undefined) => {
    if (event === 'message') pending = state.read(message?.data);
  };
  let transport: Dispatcher | undefined;
  const attach = () => {
    transport?.unbind_global(readRaw);
    transport = manager.connection?.transport;
    transport?.bind_global(readRaw);
    if (manager.socket_id !== undefined) state.connected(manager.socket_id);
  };

  const emit = manager.emit;
  manager.emit = function (event: string, data?: any, metadata?: any) {
    // Before pusher-js resubscribes its channels on 'connected', so that they carry the new socket's history.
    if (event === 'connected') attach();
    if (event !== 'message') return emit.call(manager, event, data, metadata);
    const verdict = pending !== undefined && matches(pending, data) ? pending : undefined;
    pending = undefined;
    if (verdict && 'duplicate' in verdict) return manager;
    const result = emit.call(manager, event, data, metadata);
    if (verdict) continuityLost(pusher, verdict.channel, verdict.continuityLost);
    return result;
  };
  if (manager.state === 'connected') attach();
  return pusher;
}

function matches(verdict: FrameVerdict, decoded: DecodedEvent | undefined): boolean {
  return decoded?.channel === verdict.channel && decoded.event === verdict.event;
}

function continuityLost(pusher: PusherLike, channel: string, reason: string): void {
  const userChannel = pusher.user.serverToUserChannel;
  const target = pusher.channel(channel) ?? (userChannel?.name === channel ? userChannel : undefined);
  const payload: ContinuityLost = { reason };
  target?.emit(CONTINUITY_LOST_EVENT, payload);
}
