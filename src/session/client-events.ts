// Client events (spec §6): client-* only, on private/presence channels the sender is in, when the app
// allows them; never echoed; presence adds the sender's user_id from the server's own record.
import { channelKind } from '../protocol/channels.js';
import { Codes } from '../protocol/constants.js';
import * as frames from '../protocol/frames.js';
import { MAX_DATA_DEPTH, nestedDeeperThan, type ClientFrame } from '../protocol/parse.js';
import { subscriptions, userIdOf } from '../channels/member.js';
import type { Session } from './session.js';
import { cut } from '../console/events.js';
import type { SessionDeps } from './deps.js';

function refuse(s: Session, message: string, channel?: string): void {
  s.send(frames.errorFrame(Codes.clientEventRejected, message, channel));
}

export function clientEvent(deps: SessionDeps, s: Session, frame: ClientFrame, now: number): void {
  const app = s.app;
  const channel = frame.channel;
  if (!app.enableClientMessages) return refuse(s, 'The app does not have client messaging enabled.', channel);
  if (channel === undefined) return refuse(s, 'Client events need a channel');
  const sub = subscriptions.get(s.subs, channel);
  if (!sub) {
    // Hosted Pusher's own frame for this case: code null, no channel (spec §6).
    return s.send(frames.errorFrame(null, `Cannot broadcast client event (connection not subscribed to channel ${channel})`));
  }
  const kind = channelKind(channel);
  if (kind !== 'private' && kind !== 'presence') {
    return refuse(s, `Client events are only allowed on private and presence channels, not on ${channel}`, channel);
  }
  if (frame.event.length > app.maxEventNameLength) {
    return refuse(s, `The event name is longer than ${app.maxEventNameLength} characters.`, channel);
  }
  // Before anything serialises it: JSON.stringify of data nested thousands deep overflows the stack.
  if (nestedDeeperThan(frame.data, MAX_DATA_DEPTH)) {
    return refuse(s, `The event data is nested deeper than ${MAX_DATA_DEPTH} levels.`, channel);
  }
  const size = typeof frame.data === 'string' ? Buffer.byteLength(frame.data) : Buffer.byteLength(JSON.stringify(frame.data ?? null));
  if (size > app.maxEventPayloadBytes) {
    return refuse(s, `The event data should be less than ${app.maxEventPayloadInKb} KB.`, channel);
  }
  if (app.maxClientEventsPerSecond >= 0) {
    const rate = s.more();
    if (now - rate.rateWindowStart >= 1000) {
      rate.rateWindowStart = now;
      rate.rateCount = 0;
    }
    if (++rate.rateCount > app.maxClientEventsPerSecond) {
      return refuse(s, 'The rate limit for sending client events exceeded the quota.', channel);
    }
  }
  const userId = kind === 'presence' ? userIdOf(sub) : undefined;
  // The client's data is relayed as received (an object stays an object, spec §6).
  const out = frames.channelEvent(frame.event, channel, frame.data, userId);
  // Redis down and the outage buffer full: refused whole (not even local delivery), the client may retry.
  if (!deps.channels.hasRoom([out])) return refuse(s, 'Other nodes cannot be reached right now and the event was not sent; try again shortly.', channel);
  deps.channels.publishEvent(app, channel, out, s.socketId);
  if (deps.tap.on && deps.tap.watches(app.id)) {
    const data = typeof frame.data === 'string' ? frame.data : JSON.stringify(frame.data ?? null);
    deps.tap.emit({ type: 'client_event', appId: app.id, socketId: s.socketId, channel, event: frame.event, userId, data: cut(data) });
  }
  deps.webhooks.emit(app, {
    name: 'client_event',
    channel,
    event: frame.event,
    data: frame.data,
    socket_id: s.socketId,
    ...(userId !== undefined ? { user_id: userId } : {}),
  });
}
