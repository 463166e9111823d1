// Client events (spec §6): client-* only, on private/presence channels the sender is in, when the app
// allows them; never echoed; presence adds the sender's user_id from the server's own record.
import { channelKind } from '../protocol/channels.js';
import { Codes } from '../protocol/constants.js';
import * as frames from '../protocol/frames.js';
import type { ClientFrame } from '../protocol/parse.js';
import { send, type GatewayContext, type Socket } from './context.js';

function refuse(ws: Socket, message: string, channel?: string): void {
  send(ws, frames.errorFrame(Codes.clientEventRejected, message, channel));
}

export function clientEvent(ctx: GatewayContext, ws: Socket, frame: ClientFrame, now: number): void {
  const d = ws.getUserData();
  const app = d.app;
  const channel = frame.channel;
  if (!app.enableClientMessages) return refuse(ws, 'The app does not have client messaging enabled.', channel);
  if (channel === undefined) return refuse(ws, 'Client events need a channel');
  const sub = d.channels.get(channel);
  if (!sub) {
    // Hosted Pusher's own frame for this case: code null, no channel (spec §6).
    return send(ws, frames.errorFrame(null, `Cannot broadcast client event (connection not subscribed to channel ${channel})`));
  }
  const kind = channelKind(channel);
  if (kind !== 'private' && kind !== 'presence') {
    return refuse(ws, `Client events are only allowed on private and presence channels, not on ${channel}`, channel);
  }
  if (frame.event.length > app.maxEventNameLength) {
    return refuse(ws, `The event name is longer than ${app.maxEventNameLength} characters.`, channel);
  }
  const size = typeof frame.data === 'string' ? Buffer.byteLength(frame.data) : Buffer.byteLength(JSON.stringify(frame.data ?? null));
  if (size > app.maxEventPayloadBytes) {
    return refuse(ws, `The event data should be less than ${app.maxEventPayloadInKb} KB.`, channel);
  }
  if (app.maxClientEventsPerSecond >= 0) {
    if (now - d.rateWindowStart >= 1000) {
      d.rateWindowStart = now;
      d.rateCount = 0;
    }
    if (++d.rateCount > app.maxClientEventsPerSecond) {
      return refuse(ws, 'The rate limit for sending client events exceeded the quota.', channel);
    }
  }
  const userId = kind === 'presence' ? sub.userId : undefined;
  // The client's data is relayed as received (an object stays an object, spec §6).
  ctx.backbone.publish(app.id, channel, frames.channelEvent(frame.event, channel, frame.data, userId), d.socketId);
  ctx.webhooks.emit(app, {
    name: 'client_event',
    channel,
    event: frame.event,
    data: frame.data,
    socket_id: d.socketId,
    ...(userId !== undefined ? { user_id: userId } : {}),
  });
}
