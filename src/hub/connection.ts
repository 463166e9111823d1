// The seam between the Pusher session logic and whatever carries its frames. A session sends,
// closes and joins topics through a Connection only; a transport (uWebSockets.js WebSockets, HTTP
// streaming/polling, the in-memory one of the unit tests) implements it, and broadcasts go through the
// transport's Fanout.

/** One client connection as the session logic sees it. */
export interface Connection {
  /** Sends one text frame; does nothing once the connection is closed. */
  send(frame: string): void;
  /** Closes with a WebSocket close code (spec §1.7) and reason; does nothing once closed. */
  close(code: number, reason: string): void;
  /** Starts receiving broadcasts of a topic (an app/channel pair, see hub). */
  join(topic: string): void;
  leave(topic: string): void;
  /** Bytes accepted for sending that the peer has not taken yet (backpressure). */
  bufferedAmount(): number;
  readonly remoteAddress: string;
  /** The Origin header of the opening request ('' when absent). */
  readonly origin: string;
  /** What carries it, for the debug console: 'ws', 'xhr' (the HTTP fallback), 'memory'. */
  readonly transport: string;
  readonly closed: boolean;
}

/** Broadcast of a frame to every connection of one transport that joined a topic. */
export interface Fanout {
  /** Sends `frame` to the topic's connections, leaving out `except` when it is one of this transport's. */
  publish(topic: string, frame: string, except?: Connection): void;
}

/**
 * Finds a local connection by its app and socket id, to leave the sender out of a broadcast. The
 * session layer keeps the connections by socket id; the hub asks it (one map of them per node, not two).
 */
export interface ConnectionIndex {
  connection(appId: string, socketId: string): Connection | undefined;
}
