// The parts of a pusher-js 8 client the plugin reads and wraps, as structural types: the plugin has no
// runtime dependency on pusher-js, and any pusher-js 8 build (web, Node, worker, with encryption) fits.

/** pusher-js's event emitter (EventsDispatcher): global callbacks run before named ones. */
export interface Dispatcher {
  emit(event: string, data?: any, metadata?: any): unknown;
  bind_global(callback: (event: string, data: any) => void): unknown;
  unbind_global(callback?: (event: string, data: any) => void): unknown;
}

export interface ChannelLike {
  name: string;
  emit(event: string, data?: any): unknown;
}

/** A decoded frame, as the connection manager emits it with 'message'. */
export interface DecodedEvent {
  event: string;
  channel?: string;
}

export interface PusherLike {
  key: string;
  connection: Dispatcher & {
    state: string;
    /** Set once the first connection is established, and kept after it drops. */
    socket_id: string | undefined;
    /** The current connection: its transport emits 'message' with each raw frame, before decoding. */
    connection: { transport: Dispatcher } | null;
  };
  send_event(event: string, data: any, channel?: string): boolean;
  unsubscribe(channel: string): void;
  channel(name: string): ChannelLike | undefined;
  allChannels(): ChannelLike[];
  user: { serverToUserChannel: ChannelLike | null };
}
