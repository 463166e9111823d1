// Cross-node fan-out (style.md: the Broker of centrifuge, the adapter of Socket.IO). The channel owner
// and the API publish through this interface only, so single-node (memory) and cluster (Redis) modes
// run the same code above it.
import type { HistoryPolicy } from '../history/history.js';

/**
 * Which subscriptions of a channel a delivery is for. A recorded event (message recovery) reaches the
 * subscriptions that did not opt in when it is published, as an unrecorded one would, and the opted-in
 * ones with its position once it is numbered (docs/recovery.md).
 */
export type Audience = 'all' | 'plain' | 'positioned';

/** Where frames that reach this node go: the hub, which writes them to the local subscribers. */
export interface FrameDelivery {
  /** `position`: a recorded event's position (message recovery), for the subscriptions that opted in. */
  /** `bytes`: the frame's UTF-8 length, when the caller has it already */
  deliver(appId: string, channel: string, frame: string, exceptSocketId: string | undefined, position?: string, bytes?: number, audience?: Audience): void;
}

/**
 * Breaks in what other nodes publish reaching this node (Redis: its subscriber connection closed,
 * and later subscribed again). Message recovery fills the opted-in subscriptions' gaps from the
 * history (docs/recovery.md); the others' are counted and logged.
 */
export interface FeedHandler {
  /** Frames published from now on may never reach this node, until feedResumed(). */
  feedBroken(): void;
  /**
   * Every channel of interest is subscribed again: frames reach the node again, but not those
   * published in between. `redisWasDown`: this node's other Redis connection was lost during the
   * break too, so Redis itself (or the way to it) was away, and the operator was told so already.
   */
  feedResumed(redisWasDown: boolean): void;
}

/** Node-wide commands that must reach every node, not only nodes with a channel subscribed. */
export type NodeCommand =
  | { type: 'terminate-user'; appId: string; userId: string }
  /** An app was written through the management API: every node reads it again from its database. */
  | { type: 'app-changed'; appId: string }
  /**
   * A debug console watches the app: every node streams its events for `ttlMs` more (console/relay.ts).
   * `viewer`: a console stream that has just opened (its id): every node tells it that it streams the app.
   */
  | { type: 'console-watch'; appId: string; ttlMs: number; viewer?: string };

export interface NodeCommandHandler {
  command(cmd: NodeCommand): void;
}

/** One event for publishAcross: `policy` when the channel keeps a history (publishRecorded's). */
export interface Outgoing {
  appId: string;
  channel: string;
  frame: string;
  policy?: HistoryPolicy;
  exceptSocketId?: string;
}

/** The local delivery publishAcross leaves to its caller: FrameDelivery.deliver's arguments. */
export interface LocalDelivery {
  appId: string;
  channel: string;
  frame: string;
  exceptSocketId: string | undefined;
  position: string | undefined;
  /** the frame's UTF-8 length, when the backbone counted it already */
  bytes: number | undefined;
  audience: Audience;
}

export interface BackboneHandlers {
  frames: FrameDelivery;
  commands: NodeCommandHandler;
  feed: FeedHandler;
}

export interface Backbone {
  /** Starts receiving: every frame published to a channel this node has interest in goes to `frames`. */
  start(handlers: BackboneHandlers): Promise<void>;
  /**
   * Whether these frames, published now, are sure to reach every node: false only while other nodes
   * cannot be reached and the outage buffer has no room for them (or holds an event older than its
   * age limit). What a client or the API can be asked to send again is checked first and refused
   * whole when false (HTTP 503, pusher:error 4301), so nothing that was accepted is lost. Publishes
   * after a true answer are always kept, even if the buffer filled meanwhile; callers publish right
   * after checking. The check costs nothing while Redis is up and the buffer is empty.
   */
  hasRoom(frames: readonly string[]): boolean;
  /**
   * Publishes a pre-built frame to every subscriber of app/channel on every node, this one included
   * (local delivery happens synchronously inside this call). `exceptSocketId` is left out everywhere.
   * Frames from one node reach every other node exactly once and in the order they were published,
   * across Redis outages (they wait in the outage buffer).
   */
  publish(appId: string, channel: string, frame: string, exceptSocketId?: string): void;
  /**
   * Publishes a channel event that the channel's history keeps (message recovery, docs/recovery.md):
   * numbering, keeping and fan-out are one step, so every node delivers recorded events in numbering
   * order (in a cluster, this node too delivers it when Redis hands it back).
   */
  publishRecorded(appId: string, channel: string, frame: string, policy: HistoryPolicy, exceptSocketId?: string): void;
  /**
   * True when what publishAcross() is given now reaches the other nodes' way before it returns (memory:
   * always; Redis: the outbox is empty, Redis is up, and the entries are written to its socket at once).
   */
  writesNow(): boolean;
  /**
   * publish() or (with a policy) publishRecorded() of several events, all but the local delivery, which
   * is returned for the caller to hand to FrameDelivery.deliver later, in this order: the REST fast path
   * writes the cross-node part (in Redis, into the kernel's socket buffer before this returns, so a
   * trigger the backend sends after the answer, through another node, reaches Redis after it), then
   * the HTTP answer, then the local fan-out. Only called right after writesNow() answered true.
   */
  publishAcross(events: readonly Outgoing[]): LocalDelivery[];
  /**
   * Resolves once what was published so far has been written toward the other nodes (Redis: handed
   * to its socket, so a later publish from any node reaches Redis after it); undefined when it has
   * been already, or while they cannot be reached (the outage buffer keeps it: nobody waits). The REST
   * answer waits for it, so a backend's next trigger, through another node, comes after this one.
   */
  written(): Promise<void> | undefined;
  /** This node now has at least one local subscriber of app/channel (interest-based routing). */
  addInterest(appId: string, channel: string): void;
  /**
   * Resolves once frames published to app/channel reach this node (after addInterest, and not while
   * the feed is broken), with the number of the feed's current unbroken stretch.
   */
  interestReady(appId: string, channel: string): Promise<number>;
  /**
   * Resolves once every frame published before this call (to any channel of interest) has been handed
   * to `frames`: true when the feed did not break since `stretch` (from interestReady) began. A history
   * read between the two then holds nothing that is still on its way, and misses nothing that never
   * comes (a frame numbered after the read arrives live).
   */
  caughtUp(stretch: number): Promise<boolean>;
  /** This node no longer has local subscribers of app/channel. */
  removeInterest(appId: string, channel: string): void;
  /** Sends a command to every node, this one included. */
  broadcastCommand(cmd: NodeCommand): void;
  /** True while the backbone can reach other nodes (always true in memory mode). */
  isHealthy(): boolean;
  /** Frames that reached this node from other nodes (metrics). */
  readonly received: number;
  /** Operations waiting in the outage buffer, and their frames' bytes (metrics). */
  readonly buffered: { readonly events: number; readonly bytes: number };
  /** Frames refused because the outage buffer was full or too old (metrics). */
  readonly refused: number;
  /** Redis Cluster: plain frames also sent by the fallback channel while their shard did not take them (metrics). */
  readonly fallbackSent: number;
  close(): Promise<void>;
}
