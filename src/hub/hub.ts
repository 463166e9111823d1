// The node's local view: which local connections are in which channel, and delivery of a pre-built
// frame to them. A channel is a topic of the connections' transports (uWS topics for WebSockets), so
// a broadcast is one publish per transport (style.md: build a frame once, send it many times).
import type { FrameDelivery } from '../backbone/backbone.js';
import type { HotCounters } from '../metrics/metrics.js';
import type { Connection, Fanout } from '../transport/connection.js';

/** Topic of app/channel. Channel names never contain ':' (spec §3.1), so the pair is unambiguous. */
function topicOf(appId: string, channel: string): string {
  return `${appId}:${channel}`;
}

export class Hub implements FrameDelivery {
  /** socket id → connection, for leaving out the sender of an event */
  private connections = new Map<string, Connection>();
  /** topic → number of local connections */
  private counts = new Map<string, number>();
  private readonly fanouts: Fanout[] = [];

  constructor(private readonly hot: HotCounters) {}

  /** A transport whose connections join topics; called once per transport at start. */
  addFanout(fanout: Fanout): void {
    this.fanouts.push(fanout);
  }

  register(socketId: string, conn: Connection): void {
    this.connections.set(socketId, conn);
  }

  unregister(socketId: string): void {
    this.connections.delete(socketId);
  }

  /** Adds a connection to app/channel; true when it is the node's first connection there. */
  join(conn: Connection, appId: string, channel: string): boolean {
    const topic = topicOf(appId, channel);
    conn.join(topic);
    const n = (this.counts.get(topic) ?? 0) + 1;
    this.counts.set(topic, n);
    return n === 1;
  }

  /** Removes a connection from app/channel; true when the node has no connection there any more. */
  leave(conn: Connection, appId: string, channel: string): boolean {
    const topic = topicOf(appId, channel);
    conn.leave(topic);
    const n = (this.counts.get(topic) ?? 1) - 1;
    if (n <= 0) this.counts.delete(topic);
    else this.counts.set(topic, n);
    return n <= 0;
  }

  /** Sends `frame` to every local connection in app/channel except `exceptSocketId`. */
  deliver(appId: string, channel: string, frame: string, exceptSocketId?: string): void {
    const topic = topicOf(appId, channel);
    const n = this.counts.get(topic);
    if (n === undefined) return;
    this.hot.messagesOut += n;
    this.hot.bytesOut += n * Buffer.byteLength(frame);
    const except = exceptSocketId === undefined ? undefined : this.connections.get(exceptSocketId);
    for (let i = 0; i < this.fanouts.length; i++) this.fanouts[i].publish(topic, frame, except);
  }
}
