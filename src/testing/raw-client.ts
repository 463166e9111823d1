// A raw-frame Pusher protocol client for tests: real WebSocket, JSON frames, no SDK in between.
import WebSocket from 'ws';
import { createHmac } from 'node:crypto';
import { sleep } from './eventually.js';

export interface Frame {
  event: string;
  channel?: string;
  data?: unknown;
  user_id?: string;
  [k: string]: unknown;
}

export interface CloseInfo {
  code: number;
  reason: string;
}

export class RawClient {
  readonly frames: Frame[] = [];
  /** Every frame as the text the server sent, in order (for byte-level comparisons). */
  readonly raw: string[] = [];
  socketId = '';
  activityTimeout = 0;
  readonly closed: Promise<CloseInfo>;
  private waiters: { pred: (f: Frame) => boolean; resolve: (f: Frame) => void; from: number }[] = [];
  private cursor = 0;

  private constructor(readonly ws: WebSocket) {
    this.closed = new Promise((resolve) => {
      ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() }));
    });
    ws.on('message', (raw) => {
      this.raw.push(raw.toString());
      let f: Frame;
      try {
        f = JSON.parse(raw.toString());
      } catch {
        f = { event: '__unparseable__', data: raw.toString() };
      }
      this.frames.push(f);
      const idx = this.frames.length - 1;
      for (const w of [...this.waiters]) {
        if (idx >= w.from && w.pred(f)) {
          this.waiters.splice(this.waiters.indexOf(w), 1);
          w.resolve(f);
        }
      }
    });
    ws.on('error', () => {});
  }

  /** Opens a socket to /app/<key> and resolves once the socket is open (before any frame). */
  static open(port: number, key: string, query = 'protocol=7&client=js&version=8.6.0&flash=false', host = '127.0.0.1'): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(`ws://${host}:${port}/app/${key}?${query}`);
      const c = new RawClient(ws);
      ws.once('open', () => resolve(c));
      ws.once('error', reject);
      ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    });
  }

  /** Opens and waits for pusher:connection_established. */
  static async connect(port: number, key: string, query?: string): Promise<RawClient> {
    const c = await RawClient.open(port, key, query);
    const f = await c.next((x) => x.event === 'pusher:connection_established' || x.event === 'pusher:error');
    if (f.event !== 'pusher:connection_established') throw new Error(`handshake failed: ${JSON.stringify(f)}`);
    const data = JSON.parse(f.data as string);
    c.socketId = data.socket_id;
    c.activityTimeout = data.activity_timeout;
    return c;
  }

  send(frame: unknown): void {
    this.ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
  }

  /** The next frame (not yet consumed by next()) that matches, waiting up to timeoutMs. */
  next(pred: (f: Frame) => boolean = () => true, timeoutMs = 5000): Promise<Frame> {
    for (let i = this.cursor; i < this.frames.length; i++) {
      if (pred(this.frames[i])) {
        this.cursor = i + 1;
        return Promise.resolve(this.frames[i]);
      }
    }
    return new Promise((resolve, reject) => {
      const w = {
        pred,
        from: this.cursor,
        resolve: (f: Frame) => {
          clearTimeout(t);
          this.cursor = this.frames.indexOf(f) + 1;
          resolve(f);
        },
      };
      const t = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        reject(new Error(`timed out after ${timeoutMs} ms; frames so far: ${JSON.stringify(this.frames.slice(-10))}`));
      }, timeoutMs);
      this.waiters.push(w);
    });
  }

  /** Next frame with this event name (and channel, when given). */
  nextEvent(event: string, channel?: string, timeoutMs?: number): Promise<Frame> {
    return this.next((f) => f.event === event && (channel === undefined || f.channel === channel), timeoutMs);
  }

  /** Resolves true if no matching frame arrives within ms. */
  async nothing(pred: (f: Frame) => boolean, ms = 300): Promise<boolean> {
    const start = this.frames.length;
    await sleep(ms);
    return !this.frames.slice(start).some(pred);
  }

  async subscribe(channel: string, auth?: string, channelData?: string): Promise<Frame> {
    const data: Record<string, string> = { channel, auth: auth ?? '' };
    if (channelData !== undefined) data.channel_data = channelData;
    this.send({ event: 'pusher:subscribe', data });
    return this.next(
      (f) =>
        f.channel === channel &&
        (f.event === 'pusher_internal:subscription_succeeded' || f.event === 'pusher:subscription_error'),
    );
  }

  close(): Promise<CloseInfo> {
    this.ws.close();
    return this.closed;
  }
}

export function hmacHex(secret: string, message: string): string {
  return createHmac('sha256', secret).update(message, 'utf8').digest('hex');
}

/** auth for private-/private-encrypted- channels (spec §4.2). */
export function privateAuth(key: string, secret: string, socketId: string, channel: string): string {
  return `${key}:${hmacHex(secret, `${socketId}:${channel}`)}`;
}

/** auth for presence- channels (spec §4.3). */
export function presenceAuth(key: string, secret: string, socketId: string, channel: string, channelData: string): string {
  return `${key}:${hmacHex(secret, `${socketId}:${channel}:${channelData}`)}`;
}

/** auth for pusher:signin (spec §4.6). */
export function signinAuth(key: string, secret: string, socketId: string, userData: string): string {
  return `${key}:${hmacHex(secret, `${socketId}::user::${userData}`)}`;
}
