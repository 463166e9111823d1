import type { WebSocket } from 'uWebSockets.js';
import type { Logger } from 'pino';
import type { Backbone } from '../backbone/backbone.js';
import type { PresenceStore } from '../presence/store.js';
import type { WebhookSink } from '../webhooks/sink.js';
import type { Hub } from '../hub/hub.js';
import type { SocketData } from './socket-data.js';
import type { ChannelCache } from '../presence/cache.js';
import type { SubscriptionCounts } from './subscription-count.js';

export type Socket = WebSocket<SocketData>;

/** What the gateway's handlers share. */
export interface GatewayContext {
  hub: Hub<SocketData>;
  backbone: Backbone;
  store: PresenceStore;
  webhooks: WebhookSink;
  cache: ChannelCache;
  counts: SubscriptionCounts;
  log: Logger;
}

/** Sends unless the socket is already closed (uWS throws on access to a closed socket). */
export function send(ws: Socket, frame: string): void {
  if (!ws.getUserData().closed) ws.send(frame, false, false);
}
