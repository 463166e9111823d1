// A minimal WebSocket client over a raw TCP socket, for the load generator. It exists because the `ws`
// package costs several µs of CPU per received frame (event emitter, Buffer per message, UTF-8 checks),
// which makes the generator's single core the bottleneck long before the server's. This client:
//   - sends the HTTP upgrade by hand and checks for `101`;
//   - parses server frames in place (server frames are never masked), handing each text frame to
//     `onFrame(buf, start, end)` as a slice of the read buffer, without copying or decoding;
//   - sends text frames masked with an all-zero key (RFC 6455 requires a mask, not a random one), so
//     the payload is written as is.
// Not supported (not needed by the bench): fragmented messages, compression, TLS.
import { connect, type Socket } from 'node:net';
import { randomBytes } from 'node:crypto';

export type FrameHandler = (buf: Buffer, start: number, end: number) => void;

const CRLF2 = Buffer.from('\r\n\r\n');
// One read buffer for every socket of the process: `onread` reads straight into it (no per-read Buffer,
// no stream machinery) and frames are handled synchronously; a partial frame left at the end of a read
// is copied out.
const readBuf = Buffer.allocUnsafe(256 * 1024);

export class RawWs {
  private sock: Socket;
  private pending: Buffer | null = null;
  private upgraded = false;
  closed = false;
  closeCode = 0;
  onFrame: FrameHandler = () => {};
  onClose: (code: number) => void = () => {};

  private constructor(sock: Socket) {
    this.sock = sock;
  }

  /** Resolves once the upgrade succeeded (frames may already have been buffered); `localAddress`: the client address to connect from. */
  static open(url: string, timeoutMs: number, localAddress?: string): Promise<RawWs> {
    const u = new URL(url);
    return new Promise((resolve, reject) => {
      let ws: RawWs;
      const onData = (chunk: Buffer) => {
        if (ws.upgraded) {
          ws.feed(chunk);
          return;
        }
        const all = ws.pending ? Buffer.concat([ws.pending, chunk]) : Buffer.from(chunk);
        const end = all.indexOf(CRLF2);
        if (end < 0) {
          ws.pending = all;
          return;
        }
        const head = all.subarray(0, end).toString('latin1');
        ws.pending = null;
        if (!head.startsWith('HTTP/1.1 101')) {
          fail(new Error(`upgrade refused: ${head.split('\r\n')[0]}`));
          return;
        }
        ws.upgraded = true;
        settled = true;
        clearTimeout(timer);
        resolve(ws);
        const rest = all.subarray(end + 4);
        // Let the caller install onFrame before the first frames are handed out.
        if (rest.length) queueMicrotask(() => ws.feed(rest));
      };
      const sock = connect({
        host: u.hostname,
        port: Number(u.port),
        ...(localAddress ? { localAddress } : {}),
        noDelay: true,
        onread: { buffer: readBuf, callback: (n: number, buf: Uint8Array) => {
            onData((buf as Buffer).subarray(0, n));
            return true;
          },
        },
      });
      ws = new RawWs(sock);
      let settled = false;
      const fail = (err: Error) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        sock.destroy();
        reject(err);
      };
      const timer = setTimeout(() => fail(new Error(`upgrade timeout (${timeoutMs} ms)`)), timeoutMs);
      sock.once('connect', () => {
        sock.write(
          `GET ${u.pathname}${u.search} HTTP/1.1\r\nHost: ${u.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
            `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
        );
      });
      sock.on('error', (err) => {
        if (!settled) fail(err);
        else ws.markClosed(1006);
      });
      sock.on('close', () => {
        if (!settled) fail(new Error('socket closed during upgrade'));
        else ws.markClosed(ws.closeCode || 1006);
      });
    });
  }

  private markClosed(code: number): void {
    if (this.closed) return;
    this.closed = true;
    this.closeCode = code;
    this.onClose(code);
  }

  private feed(chunk: Buffer): void {
    let buf = chunk;
    if (this.pending) {
      buf = Buffer.concat([this.pending, chunk]);
      this.pending = null;
    }
    const n = buf.length;
    let i = 0;
    while (i + 2 <= n) {
      const b0 = buf[i];
      let len = buf[i + 1] & 0x7f;
      let p = i + 2;
      if (len === 126) {
        if (p + 2 > n) break;
        len = buf.readUInt16BE(p);
        p += 2;
      } else if (len === 127) {
        if (p + 8 > n) break;
        len = Number(buf.readBigUInt64BE(p));
        p += 8;
      }
      if (p + len > n) break;
      const op = b0 & 0x0f;
      if (op === 1 || op === 2 || op === 0) this.onFrame(buf, p, p + len);
      else if (op === 8) {
        this.closeCode = len >= 2 ? buf.readUInt16BE(p) : 1005;
        this.sock.end();
      } else if (op === 9) this.control(0xa, buf.subarray(p, p + len)); // ping → pong
      i = p + len;
    }
    if (i < n) this.pending = Buffer.from(buf.subarray(i));
  }

  private control(op: number, payload: Buffer): void {
    const h = Buffer.from([0x80 | op, 0x80 | payload.length, 0, 0, 0, 0]);
    this.sock.write(Buffer.concat([h, payload]));
  }

  /** A frame's text (the frame is all of it; RawXhr's lines need unpacking). */
  frameText(buf: Buffer, start: number, end: number): string {
    return buf.toString('utf8', start, end);
  }

  /** Sends a text frame (masked with a zero key). */
  send(text: string): void {
    if (this.closed) return;
    const payload = Buffer.from(text);
    const len = payload.length;
    let h: Buffer;
    if (len < 126) {
      h = Buffer.alloc(6);
      h[1] = 0x80 | len;
    } else if (len < 65536) {
      h = Buffer.alloc(8);
      h[1] = 0x80 | 126;
      h.writeUInt16BE(len, 2);
    } else {
      h = Buffer.alloc(14);
      h[1] = 0x80 | 127;
      h.writeBigUInt64BE(BigInt(len), 2);
    }
    h[0] = 0x81;
    this.sock.write(Buffer.concat([h, payload]));
  }

  /** Closing handshake is skipped: the bench just drops the TCP connection. */
  terminate(): void {
    this.closed = true;
    this.sock.destroy();
  }
}
