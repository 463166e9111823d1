// The engine: the node's shared state and cross-node fan-out, either all in memory (one node) or all
// in Redis (a cluster). Everything above it (channels, sessions, API, webhooks) runs the same code in
// both modes and sees only these interfaces.
import type { Backbone, BackboneHandlers } from '../backbone/backbone.js';
import type { ChannelCache } from '../cache/channel-cache.js';
import type { ChannelHistory } from '../history/history.js';
import type { ConnectionCensus } from '../limits/connection-census.js';
import type { RateWindows } from '../limits/rate-windows.js';
import type { ClusterStateHandler, PresenceStore } from '../presence/store.js';
import type { WebhookQueue } from '../webhooks/queue.js';

/** Who hears what other nodes (and their deaths) cause on this node. */
export interface EngineHandlers extends BackboneHandlers {
  clusterState: ClusterStateHandler;
}

export interface Engine {
  readonly mode: 'memory' | 'redis';
  readonly backbone: Backbone;
  readonly store: PresenceStore;
  readonly cache: ChannelCache;
  /** message recovery's read side (recording is the backbone's publishRecorded) */
  readonly history: ChannelHistory;
  readonly rates: RateWindows;
  readonly census: ConnectionCensus;
  readonly webhookQueue: WebhookQueue;
  /** Starts receiving from the cluster; resolves once this node is registered (or Redis is found down). */
  start(handlers: EngineHandlers): Promise<void>;
  /**
   * False while other nodes cannot be reached (Redis down, or just back and the nodes still
   * resubscribing) or this node's share is not written again yet; always true in memory mode.
   */
  isHealthy(): boolean;
  /** Graceful stop: this node's share of the cluster state goes now, its due events to the handlers. */
  leave(): Promise<void>;
  close(): Promise<void>;
}
