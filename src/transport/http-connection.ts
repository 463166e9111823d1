// The HTTP implementation of the connection seam (spec §13): one Connection per pusher-js HTTP
// session, whose frames wait in a bounded queue until a receive request takes them. Requests come
// and go (a stream rotated by the client, one poll after another); the session outlives each of them
// for a grace period, and a session whose client is gone for longer is closed like a dropped socket.
import type { Session } from '../session/session.js';
import type { ClosedBy } from '../session/sessions.js';
import { Liveness } from '../session/liveness.js';
import {
  STREAM_CLIENT_LIMIT_CHARS,
  closeFrame,
  emptyMessagesFrame,
  heartbeatFrame,
  messagesFrame,
  openFrame,
} from '../protocol/http-frames.js';
import type { Connection, Fanout } from '../hub/connection.js';
import { TopicTable } from './topic-table.js';
import type { Receiver } from './http-receiver.js';

/** RFC 6455's code for a connection lost without a close, as a dropped WebSocket reports it. */
const CONNECTION_LOST = 1006;

export interface HttpSessionSettings {
  /** ms a session without a receive request is kept before it is closed */
  graceMs: number;
  /** queued bytes at which the session is closed as a slow consumer (4100) */
  maxBufferedBytes: number;
}

/** What an HTTP connection tells the transport that holds it. */
export interface HttpConnectionOwner {
  /** The session closed: the session logic cleans it up (spec §5.2 leaves, webhooks). */
  closed(conn: HttpConnection, code: number, by: ClosedBy, reason: string): void;
  /** Nothing more to deliver or wait for: the connection leaves the transport's table. */
  forget(conn: HttpConnection): void;
  /** The session's queue reached its limit: it is closed as a slow consumer. */
  overflowed(conn: HttpConnection): void;
  /** A write failed unexpectedly (logged; it must not escape into uWS or a microtask). */
  failed(err: unknown): void;
}

export class HttpFanout implements Fanout {
  /** @internal membership kept for the connections */
  readonly topics = new TopicTable<HttpConnection>();
  /** Connections with frames to write at the end of this event-loop iteration. */
  private readonly due = new Set<HttpConnection>();
  private flushScheduled = false;

  /** The frame is wrapped for HTTP once per publish, not once per connection. */
  publish(topic: string, frame: string, except?: Connection): void {
    const members = this.topics.members(topic);
    if (!members) return;
    const chunk = messagesFrame(frame);
    const bytes = Buffer.byteLength(chunk);
    for (const c of members) if (c !== except) c.deliver(chunk, bytes);
  }

  /**
   * @internal Writes are made once per event-loop iteration (setImmediate runs after the I/O callbacks
   * of the iteration), so every frame a connection gets from the requests handled in one iteration
   * leaves in one write, as uWS batches its WebSocket publishes.
   */
  schedule(conn: HttpConnection): void {
    this.due.add(conn);
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(this.flush);
  }

  private readonly flush = (): void => {
    this.flushScheduled = false;
    for (const c of this.due) c.pumpNow();
    this.due.clear();
  };
}

export class HttpConnection implements Connection {
  get transport(): string {
    return 'xhr';
  }
  closed = false;
  /** Set once the handshake (and quota) let the session open. */
  session?: Session;
  /** Left the transport's table: late events (an admission answer) must not revive it. */
  forgotten = false;
  /** Over the queue limit: frames are dropped until the close that follows. */
  private overflowed = false;
  private receiver?: Receiver;
  /** Frames not yet written, in order; a session always starts with the open frame. */
  private queue: string[] = [openFrame];
  private queuedBytes = openFrame.length;
  private graceTimer?: NodeJS.Timeout;

  constructor(
    /** `<key>/<server>/<session>` as pusher-js spells them in the path */
    readonly id: string,
    readonly fanout: HttpFanout,
    readonly remoteAddress: string,
    readonly origin: string,
    private readonly owner: HttpConnectionOwner,
    private readonly settings: HttpSessionSettings,
  ) {}

  send(frame: string): void {
    if (this.closed) return;
    const chunk = messagesFrame(frame);
    this.deliver(chunk, Buffer.byteLength(chunk));
  }

  /** Queues an already wrapped frame; written at the end of the event-loop iteration (batched). */
  deliver(chunk: string, bytes: number): void {
    if (this.closed || this.overflowed) return;
    // Frames for a receiver that can take them leave within this event-loop iteration. Otherwise the
    // limit holds: a slow consumer is closed 4100 (back off and reconnect, spec §1.7) rather than
    // growing the server's memory or silently missing frames. The close waits for the end of the
    // current broadcast, which must not see its connections change under it.
    if (this.queuedBytes >= this.settings.maxBufferedBytes && !(this.receiver && this.writable(this.receiver))) {
      this.overflowed = true;
      queueMicrotask(() => this.safely(() => this.owner.overflowed(this)));
      return;
    }
    this.queue.push(chunk);
    this.queuedBytes += bytes;
    this.schedulePump();
  }

  close(code: number, reason: string): void {
    this.end(code, reason, 'server');
  }

  private end(code: number, reason: string, by: ClosedBy): void {
    if (this.closed) return;
    this.closed = true;
    this.fanout.topics.leaveAll(this);
    const frame = closeFrame(code, reason);
    this.queue.push(frame);
    this.queuedBytes += Buffer.byteLength(frame);
    // Kept until the close frame is written or the grace period ends, so a client between two
    // requests still learns the code (pusher-js acts on it, spec §1.7).
    if (!this.receiver) this.startGrace();
    this.schedulePump();
    if (this.session) this.owner.closed(this, code, by, reason);
  }

  join(topic: string): void {
    if (!this.closed) this.fanout.topics.join(topic, this);
  }

  leave(topic: string): void {
    this.fanout.topics.leave(topic, this);
  }

  bufferedAmount(): number {
    return this.queuedBytes + (this.receiver?.blockedBytes ?? 0);
  }

  /** A receive request for this session: the newest one takes over (spec §13.3). */
  attach(r: Receiver): void {
    const previous = this.receiver;
    this.receiver = r;
    // The client gave the previous request up (pusher-js aborts before it asks again).
    if (previous) previous.end();
    this.stopGrace();
    // A new request is a sign of life, as any frame is.
    if (this.session) Liveness.seen(this.session, Date.now());
    r.onGone = () => this.detach(r);
    r.onDrained = () => this.pumpNow();
    this.schedulePump();
  }

  /** pusher-js's heartbeat (an empty xhr_send): alive; answered so that its ping gets activity back. */
  clientHeartbeat(now: number): void {
    if (this.session) Liveness.seen(this.session, now);
    this.deliver(emptyMessagesFrame, emptyMessagesFrame.length);
  }

  /** Called by the transport's sweep: a quiet receiver gets a heartbeat (a waiting poll ends with it). */
  heartbeat(now: number, intervalMs: number): void {
    const r = this.receiver;
    if (!r || r.done) return;
    if (full(r)) {
      // pusher-js replaces a full stream within a round trip; a client that keeps it is ended, and
      // the session then waits for a new request as after any other.
      if (now - r.lastWriteAt >= this.settings.graceMs) this.finish(r, '');
      return;
    }
    if (this.queue.length > 0 || r.blockedBytes > 0 || now - r.lastWriteAt < intervalMs) return;
    if (r.streaming) r.write(heartbeatFrame, heartbeatFrame.length, now);
    else this.finish(r, heartbeatFrame);
  }

  /** Ends the session's business with the client without a close frame (an HTTP error answered instead). */
  abandon(status: string, text: string): void {
    this.receiver?.reject(status, text);
    this.receiver = undefined;
    this.forget();
  }

  private schedulePump(): void {
    this.fanout.schedule(this);
  }

  /** @internal called by the fanout's flush */
  pumpNow(): void {
    this.safely(() => this.pump());
  }

  /** Runs work outside any request handler (a microtask, a uWS callback): nothing may escape it. */
  private safely(work: () => void): void {
    try {
      work();
    } catch (err) {
      this.owner.failed(err);
    }
  }

  /** Writes what is queued to the receiver, if it can take it. */
  private pump(): void {
    const r = this.receiver;
    if (!r || this.queue.length === 0 || !this.writable(r)) return;
    const { text, bytes } = this.take(r);
    if (this.queue.length > 0) {
      r.write(text, bytes, Date.now()); // a stream that reached its length; the rest waits for the next
    } else if (this.closed) {
      // The close frame was the last: the client has everything.
      this.receiver = undefined;
      r.end(text);
      this.forget();
    } else if (r.streaming) {
      r.write(text, bytes, Date.now());
    } else {
      this.finish(r, text);
    }
  }

  /**
   * Takes what the receiver gets now: everything, except that a stream takes frames only up to the
   * one that carries it past pusher-js's limit. pusher-js replaces the stream as soon as it has read
   * past the limit up to a line end, so anything after that line would be lost with the old request.
   */
  private take(r: Receiver): { text: string; bytes: number } {
    let n = this.queue.length;
    if (r.streaming) {
      let chars = r.written;
      for (n = 0; n < this.queue.length && chars <= STREAM_CLIENT_LIMIT_CHARS; n++) chars += this.queue[n].length;
    }
    if (n === this.queue.length) {
      const all = { text: this.queue.length === 1 ? this.queue[0] : this.queue.join(''), bytes: this.queuedBytes };
      this.queue = [];
      this.queuedBytes = 0;
      return all;
    }
    const text = this.queue.slice(0, n).join('');
    const bytes = Buffer.byteLength(text);
    this.queue = this.queue.slice(n);
    this.queuedBytes -= bytes;
    return { text, bytes };
  }

  /**
   * Whether a receiver can take a write now: not blocked by backpressure, and, for a stream, not past
   * the length after which pusher-js replaces it (what is written after that would be lost when the
   * client aborts it, so it waits for the next request instead).
   */
  private writable(r: Receiver): boolean {
    return !r.done && r.blockedBytes === 0 && !full(r);
  }

  /** A poll is answered once (a full stream ended); the client asks again right away. */
  private finish(r: Receiver, text: string): void {
    this.receiver = undefined;
    r.end(text);
    this.startGrace();
  }

  private detach(r: Receiver): void {
    if (this.receiver !== r) return;
    this.receiver = undefined;
    this.startGrace();
  }

  private startGrace(): void {
    this.stopGrace();
    this.graceTimer = setTimeout(() => this.expire(), this.settings.graceMs);
    this.graceTimer.unref();
  }

  private stopGrace(): void {
    if (this.graceTimer) clearTimeout(this.graceTimer);
    this.graceTimer = undefined;
  }

  /** No receive request for the whole grace period: the client is gone, as a dropped socket is. */
  private expire(): void {
    this.graceTimer = undefined;
    if (this.receiver) return;
    if (!this.closed) this.end(CONNECTION_LOST, 'Connection lost', 'client');
    this.forget();
  }

  private forget(): void {
    this.stopGrace();
    this.queue = [];
    this.queuedBytes = 0;
    if (this.forgotten) return;
    this.forgotten = true;
    this.owner.forget(this);
  }
}

/** A stream past the length after which pusher-js replaces it. */
function full(r: Receiver): boolean {
  return r.streaming && r.written > STREAM_CLIENT_LIMIT_CHARS;
}
