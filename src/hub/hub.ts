// The node's local view: which local sockets are in which channel, and delivery of a pre-built frame
// to them. Channels map to uWS topics, so a broadcast is one native publish (style.md: build a frame
// once, send it many times).
import type { TemplatedApp, WebSocket } from 'uWebSockets.js';
import type { HotCounters } from '../metrics/metrics.js';

/** Topic of app/channel. Channel names never contain ':' (spec §3.1), so the pair is unambiguous. */
export function topicOf(appId: string, channel: string): string {
  return `${appId}:${channel}`;
}

export class Hub<T> {
  private sockets = new Map<string, WebSocket<T>>();
  /** topic → number of local sockets */
  private counts = new Map<string, number>();

  constructor(
    private readonly uws: TemplatedApp,
    private readonly hot: HotCounters,
  ) {}

  register(socketId: string, ws: WebSocket<T>): void {
    this.sockets.set(socketId, ws);
  }

  unregister(socketId: string): void {
    this.sockets.delete(socketId);
  }

  socket(socketId: string): WebSocket<T> | undefined {
    return this.sockets.get(socketId);
  }

  get size(): number {
    return this.sockets.size;
  }

  allSockets(): IterableIterator<WebSocket<T>> {
    return this.sockets.values();
  }

  /** Adds a live socket to app/channel; true when it is the node's first socket there. */
  join(ws: WebSocket<T>, appId: string, channel: string): boolean {
    const topic = topicOf(appId, channel);
    ws.subscribe(topic);
    const n = (this.counts.get(topic) ?? 0) + 1;
    this.counts.set(topic, n);
    return n === 1;
  }

  /**
   * Removes a socket from app/channel; true when the node has no socket there any more.
   * `ws` is omitted when the socket is already closed (uWS drops its topics by itself).
   */
  leave(ws: WebSocket<T> | undefined, appId: string, channel: string): boolean {
    const topic = topicOf(appId, channel);
    ws?.unsubscribe(topic);
    const n = (this.counts.get(topic) ?? 1) - 1;
    if (n <= 0) this.counts.delete(topic);
    else this.counts.set(topic, n);
    return n <= 0;
  }

  localCount(appId: string, channel: string): number {
    return this.counts.get(topicOf(appId, channel)) ?? 0;
  }

  /** Sends `frame` to every local socket in app/channel except `exceptSocketId`. */
  deliver(appId: string, channel: string, frame: string, exceptSocketId?: string): void {
    const topic = topicOf(appId, channel);
    const n = this.counts.get(topic);
    if (n === undefined) return;
    this.hot.messagesOut += n;
    this.hot.bytesOut += n * frame.length;
    const except = exceptSocketId === undefined ? undefined : this.sockets.get(exceptSocketId);
    // ws.publish reaches every subscriber of the topic but the publishing socket itself.
    if (except) except.publish(topic, frame, false, false);
    else this.uws.publish(topic, frame, false, false);
  }
}
