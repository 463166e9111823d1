// A minimal pusher-js-style HTTP streaming client (xhr_streaming, docs/pusher-protocol.md §13) over a
// raw TCP socket, for the load generator: the same surface as RawWs (onFrame, onClose, send, terminate),
// so a subscriber process can run either. Like RawWs it avoids the per-message costs of Node's HTTP
// client: the response is read with `onread` into one shared buffer, the chunked encoding and the
// newline-delimited frames are parsed in place, and each `a` line (ripple writes one Pusher frame per
// line) is handed to `onFrame(buf, start, end)` as a slice of the read buffer. The marker of a bench
// event needs no JSON escaping, so it is found in the line as it is; control frames are unpacked with
// frameText(). As pusher-js does, it answers `h` with an empty send and replaces its stream after
// 256 KiB on the same session. Sends (`xhr_send`) are rare in the bench (subscribe, pong, heartbeat
// replies) and go through fetch.
// Not supported (not needed by the bench): TLS, `m` frames, several frames in one `a` line.
import { connect, type Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import type { FrameHandler } from './rawws.js';

const CRLF2 = Buffer.from('\r\n\r\n');
const NL = 0x0a;
const CR = 0x0d;
/** pusher-js's MAX_BUFFER_LENGTH: it replaces a stream once it has read more than this. */
const STREAM_LIMIT = 256 * 1024;
const readBuf = Buffer.allocUnsafe(256 * 1024);

type State = 'head' | 'size' | 'data' | 'trailer';

export class RawXhr {
  closed = false;
  closeCode = 0;
  onFrame: FrameHandler = () => {};
  onClose: (code: number) => void = () => {};
  private sock!: Socket;
  private state: State = 'head';
  private head: Buffer | null = null;
  private sizeText = '';
  private remaining = 0;
  private trailerLeft = 0;
  private line: Buffer | null = null;
  private bodyBytes = 0;
  /** Reads kept back until the caller has had a chance to install onFrame. */
  private held: Buffer[] | null = null;

  private constructor(
    private readonly host: string,
    private readonly port: number,
    /** /pusher/app/<key>/<server>/<session> */
    private readonly sessionPath: string,
    private readonly query: string,
  ) {}

  /** `url` is the base pusher-js builds: http://host:port/pusher/app/<key>?protocol=7&...; resolves on a 200. */
  static open(url: string, timeoutMs: number): Promise<RawXhr> {
    const u = new URL(url);
    const session = `${randomBytes(2).readUInt16BE(0) % 1000}/${randomBytes(6).toString('base64url').slice(0, 8)}`;
    const x = new RawXhr(u.hostname, Number(u.port), `${u.pathname}/${session}`, u.search);
    return x.stream(timeoutMs).then(() => x);
  }

  /** Opens a receive request for the session; resolves once its response head says 200. */
  private stream(timeoutMs: number): Promise<void> {
    this.state = 'head';
    this.head = null;
    this.sizeText = '';
    this.bodyBytes = 0;
    return new Promise((resolve, reject) => {
      let settled = false;
      const fail = (err: Error) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        sock.destroy();
        reject(err);
      };
      const timer = setTimeout(() => fail(new Error(`xhr_streaming timeout (${timeoutMs} ms)`)), timeoutMs);
      const sock = connect({
        host: this.host,
        port: this.port,
        noDelay: true,
        onread: {
          buffer: readBuf,
          callback: (n: number, buf: Uint8Array) => {
            if (this.sock !== sock) return true;
            const chunk = (buf as Buffer).subarray(0, n);
            if (this.held) {
              this.held.push(Buffer.from(chunk));
            } else if (this.state === 'head') {
              const head = this.readHead(chunk);
              if (head instanceof Error) return fail(head), true;
              if (!head) return true;
              settled = true;
              clearTimeout(timer);
              resolve();
              // Let the caller install onFrame (a few promise hops away) before frames are handed out.
              const held = (this.held = [Buffer.from(head.rest)]);
              setImmediate(() => {
                this.held = null;
                for (const b of held) if (this.sock === sock) this.readBody(b);
              });
            } else {
              this.readBody(chunk);
            }
            return true;
          },
        },
      });
      this.sock = sock;
      sock.once('connect', () => {
        sock.write(`POST ${this.sessionPath}/xhr_streaming${this.query} HTTP/1.1\r\nHost: ${this.host}:${this.port}\r\nContent-Type: application/json\r\nContent-Length: 0\r\n\r\n`);
      });
      sock.on('error', (err) => {
        if (!settled) fail(err);
      });
      sock.on('close', () => {
        if (!settled) fail(new Error('socket closed before the response'));
        else if (this.sock === sock) this.markClosed(this.closeCode || 1006);
      });
    });
  }

  /** The response head: null while incomplete, an error unless it is a 200 chunked stream, else what follows it. */
  private readHead(chunk: Buffer): Error | null | { rest: Buffer } {
    const buf = this.head ? Buffer.concat([this.head, chunk]) : chunk;
    const end = buf.indexOf(CRLF2);
    if (end < 0) {
      this.head = Buffer.from(buf);
      return null;
    }
    const head = buf.subarray(0, end).toString('latin1');
    this.head = null;
    if (!head.startsWith('HTTP/1.1 200')) return new Error(`xhr_streaming refused: ${head.split('\r\n')[0]}`);
    if (!/\r\ntransfer-encoding: chunked/i.test(head)) return new Error('xhr_streaming: expected a chunked response');
    this.state = 'size';
    return { rest: buf.subarray(end + 4) };
  }

  /** The chunked body of the response, one read at a time. */
  private readBody(buf: Buffer): void {
    const n = buf.length;
    let i = 0;
    while (i < n) {
      if (this.state === 'size') {
        const c = buf[i++];
        if (c === NL) {
          const size = parseInt(this.sizeText, 16);
          this.sizeText = '';
          if (size === 0) {
            // The server ended the stream: for pusher-js a dropped connection.
            this.sock.destroy();
            return;
          }
          this.remaining = size;
          this.state = 'data';
        } else if (c !== CR) this.sizeText += String.fromCharCode(c);
      } else if (this.state === 'data') {
        const take = Math.min(this.remaining, n - i);
        this.body(buf, i, i + take);
        i += take;
        this.remaining -= take;
        if (this.remaining === 0) {
          this.state = 'trailer';
          this.trailerLeft = 2;
        }
      } else {
        i++;
        if (--this.trailerLeft === 0) this.state = 'size';
      }
    }
    // pusher-js checks after each read whether it has read past the limit up to a line end. (uWS writes
    // a chunk's closing CRLF in front of the next chunk, so a read can end in 'trailer' for long.)
    if (!this.closed && this.bodyBytes > STREAM_LIMIT && this.line === null && this.state !== 'data') this.rotate();
  }

  /** Body bytes: split into lines; a line cut by a read or a chunk boundary is copied out. */
  private body(buf: Buffer, start: number, end: number): void {
    this.bodyBytes += end - start;
    let s = start;
    while (s < end) {
      const nl = buf.indexOf(NL, s);
      if (nl < 0 || nl >= end) {
        const rest = buf.subarray(s, end);
        this.line = this.line ? Buffer.concat([this.line, rest]) : Buffer.from(rest);
        return;
      }
      if (this.line) {
        const whole = Buffer.concat([this.line, buf.subarray(s, nl)]);
        this.line = null;
        this.frame(whole, 0, whole.length);
      } else {
        this.frame(buf, s, nl);
      }
      s = nl + 1;
    }
  }

  private frame(buf: Buffer, start: number, end: number): void {
    const type = buf[start];
    if (type === 0x61 /* a */) {
      if (end - start > 3) this.onFrame(buf, start, end); // `a[]` carries nothing
    } else if (type === 0x68 /* h */) {
      this.sendRaw('[]');
    } else if (type === 0x63 /* c */) {
      this.closeCode = (JSON.parse(buf.toString('utf8', start + 1, end)) as [number])[0];
    }
  }

  /** The Pusher frame of an `a` line, as text (RawWs.frameText's counterpart). */
  frameText(buf: Buffer, start: number, end: number): string {
    return (JSON.parse(buf.toString('utf8', start + 1, end)) as string[])[0] ?? '';
  }

  /** As pusher-js does past 256 KiB: drop the request, open the next one for the same session. */
  private rotate(): void {
    const old = this.sock;
    this.stream(30_000).catch(() => this.markClosed(1006));
    old.destroy();
  }

  private markClosed(code: number): void {
    if (this.closed) return;
    this.closed = true;
    this.closeCode = code;
    this.onClose(code);
  }

  send(text: string): void {
    this.sendRaw(JSON.stringify([text]));
  }

  private sendRaw(body: string): void {
    if (this.closed) return;
    fetch(`http://${this.host}:${this.port}${this.sessionPath}/xhr_send`, { method: 'POST', body, headers: { 'content-type': 'application/json' } }).then(
      (r) => r.arrayBuffer(),
      () => {},
    );
  }

  terminate(): void {
    this.closed = true;
    this.sock.destroy();
  }
}
