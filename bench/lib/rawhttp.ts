// A minimal HTTP/1.1 keep-alive client for the publisher: one request at a time per connection (no
// pipelining), responses framed by Content-Length or chunked encoding. Node's http client costs tens of
// µs per request, which would make the generator the bottleneck of the REST scenarios.
import { connect, type Socket } from 'node:net';

export interface RawResponse {
  status: number;
  body: string;
}

const CRLF2 = Buffer.from('\r\n\r\n');

export class RawHttpConn {
  private sock: Socket;
  private buf: Buffer | null = null;
  private waiter: { resolve: (r: RawResponse) => void; reject: (e: Error) => void } | null = null;
  private dead: Error | null = null;
  readonly ready: Promise<void>;

  constructor(
    private host: string,
    private port: number,
  ) {
    this.sock = connect({ host, port, noDelay: true });
    this.ready = new Promise((resolve, reject) => {
      this.sock.once('connect', () => resolve());
      this.sock.once('error', reject);
    });
    this.sock.on('error', (err) => this.die(err));
    this.sock.on('close', () => this.die(new Error('connection closed')));
    this.sock.on('data', (d: Buffer) => this.onData(d));
  }

  get busy(): boolean {
    return this.waiter !== null;
  }

  get alive(): boolean {
    return this.dead === null;
  }

  private die(err: Error): void {
    if (this.dead) return;
    this.dead = err;
    const w = this.waiter;
    this.waiter = null;
    if (w) w.reject(err);
  }

  private onData(d: Buffer): void {
    this.buf = this.buf ? Buffer.concat([this.buf, d]) : d;
    const b = this.buf;
    const he = b.indexOf(CRLF2);
    if (he < 0) return;
    const head = b.subarray(0, he).toString('latin1');
    const status = Number(head.slice(9, 12));
    const lower = head.toLowerCase();
    let body: string;
    let used: number;
    const cl = /\r\ncontent-length:\s*(\d+)/.exec(lower);
    if (cl) {
      const len = Number(cl[1]);
      if (b.length < he + 4 + len) return;
      body = b.subarray(he + 4, he + 4 + len).toString();
      used = he + 4 + len;
    } else if (lower.includes('\r\ntransfer-encoding: chunked')) {
      // decode chunks; wait for the terminating 0-size chunk
      let p = he + 4;
      const parts: Buffer[] = [];
      for (;;) {
        const le = b.indexOf('\r\n', p);
        if (le < 0) return;
        const size = parseInt(b.subarray(p, le).toString('latin1'), 16);
        if (b.length < le + 2 + size + 2) return;
        if (size === 0) {
          used = le + 4;
          break;
        }
        parts.push(b.subarray(le + 2, le + 2 + size));
        p = le + 2 + size + 2;
      }
      body = Buffer.concat(parts).toString();
    } else {
      body = '';
      used = he + 4;
    }
    this.buf = used < b.length ? b.subarray(used) : null;
    const w = this.waiter;
    this.waiter = null;
    // Soketi answers every request with `Connection: close`: the pool opens a new connection next time.
    if (lower.includes('\r\nconnection: close')) this.close();
    if (w) w.resolve({ status, body });
  }

  request(method: string, path: string, body: string, headers = ''): Promise<RawResponse> {
    if (this.dead) return Promise.reject(this.dead);
    if (this.waiter) return Promise.reject(new Error('connection busy'));
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
      this.sock.write(
        `${method} ${path} HTTP/1.1\r\nHost: ${this.host}:${this.port}\r\nContent-Type: application/json\r\n` +
          `Content-Length: ${Buffer.byteLength(body)}\r\n${headers}\r\n${body}`,
      );
    });
  }

  close(): void {
    this.dead = this.dead ?? new Error('closed');
    this.sock.destroy();
  }
}

/** A pool of keep-alive connections; `acquire` returns an idle one (or null when all are busy). */
export class RawHttpPool {
  private conns: RawHttpConn[] = [];
  constructor(
    private host: string,
    private port: number,
    private size: number,
  ) {}

  async open(): Promise<void> {
    for (let i = 0; i < this.size; i++) this.conns.push(new RawHttpConn(this.host, this.port));
    await Promise.all(this.conns.map((c) => c.ready));
  }

  acquire(): RawHttpConn | null {
    for (let i = 0; i < this.conns.length; i++) {
      let c = this.conns[i];
      if (!c.alive) {
        c = new RawHttpConn(this.host, this.port);
        this.conns[i] = c;
      }
      if (!c.busy) return c;
    }
    return null;
  }

  close(): void {
    for (const c of this.conns) c.close();
  }
}
