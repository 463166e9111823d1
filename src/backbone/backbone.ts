// Cross-node fan-out (style.md: the Broker of centrifuge, the adapter of Socket.IO). The gateway and
// the API publish through this interface only, so single-node (memory) and cluster (Redis) modes run
// the same code above it.

/** What a node does with a frame that reached it through the backbone. */
export type Deliver = (appId: string, channel: string, frame: string, exceptSocketId: string | undefined) => void;

/** Node-wide commands that must reach every node, not only nodes with a channel subscribed. */
export type NodeCommand =
  | { type: 'terminate-user'; appId: string; userId: string }
  | { type: 'user-event'; appId: string; userId: string; frame: string };

export interface Backbone {
  /** Starts receiving; `deliver` is called for every frame published to a channel this node has interest in. */
  start(deliver: Deliver, onCommand: (cmd: NodeCommand) => void): Promise<void>;
  /**
   * Publishes a pre-built frame to every subscriber of app/channel on every node, this one included
   * (local delivery happens synchronously inside this call). `exceptSocketId` is left out everywhere.
   */
  publish(appId: string, channel: string, frame: string, exceptSocketId?: string): void;
  /** This node now has at least one local subscriber of app/channel (interest-based routing). */
  addInterest(appId: string, channel: string): void;
  /** This node no longer has local subscribers of app/channel. */
  removeInterest(appId: string, channel: string): void;
  /** Sends a command to every node, this one included. */
  broadcastCommand(cmd: NodeCommand): void;
  /** True while the backbone can reach other nodes (always true in memory mode). */
  isHealthy(): boolean;
  close(): Promise<void>;
}
