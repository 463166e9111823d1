// A webhook receiver on 127.0.0.1 for tests: records every request with its arrival time, headers and
// raw body, and answers with the status the test sets (200 by default), so a test can take it down,
// make it fail or hang.
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { freePort } from './harness.js';

export interface ReceivedWebhook {
  /** ms timestamp of arrival */
  at: number;
  events: Record<string, unknown>[];
  /** the body's `time_ms` */
  timeMs: unknown;
  headers: IncomingHttpHeaders;
  /** the body as it came, for checking its signature */
  raw: string;
}

export class WebhookReceiver {
  /** Requests answered with a 2xx. */
  readonly received: ReceivedWebhook[] = [];
  /** Arrival time of every request, answered or failed. */
  readonly attempts: number[] = [];
  /** What the next requests are answered with. */
  status = 200;
  /** This many first requests are answered 500. */
  failFirst = 0;
  /** This many first requests are never answered (the receiver hangs). */
  hangFirst = 0;
  private server?: Server;

  private constructor(readonly port: number) {}

  /** A receiver on a free port, listening unless `up: false` (a receiver that is down until `up()`). */
  static async start(opts: { up?: boolean } = {}): Promise<WebhookReceiver> {
    const r = new WebhookReceiver(await freePort());
    if (opts.up !== false) await r.up();
    return r;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}/hook`;
  }

  up(): Promise<void> {
    this.server = createServer((req, res) => {
      let raw = '';
      req.on('data', (d) => (raw += d));
      req.on('end', () => {
        const at = Date.now();
        this.attempts.push(at);
        if (this.attempts.length <= this.hangFirst) return;
        const status = this.attempts.length <= this.failFirst ? 500 : this.status;
        if (status >= 200 && status < 300) {
          const body = JSON.parse(raw) as { time_ms: unknown; events: Record<string, unknown>[] };
          this.received.push({ at, events: body.events, timeMs: body.time_ms, headers: req.headers, raw });
        }
        res.writeHead(status).end('{}');
      });
    });
    return new Promise((resolve) => this.server!.listen(this.port, '127.0.0.1', () => resolve()));
  }

  stop(): Promise<void> {
    return new Promise((resolve) => {
      if (!this.server) return resolve();
      this.server.closeAllConnections();
      this.server.close(() => resolve());
      this.server = undefined;
    });
  }

  events(): Record<string, unknown>[] {
    return this.received.flatMap((r) => r.events);
  }

  named(name: string, channel?: string): Record<string, unknown>[] {
    return this.events().filter((e) => e.name === name && (channel === undefined || e.channel === channel));
  }

  /**
   * The channel's events in arrival order, each distinct one once ("member_added:<user>" for member
   * events), since delivery is at least once: for checking order where every event is distinct.
   */
  firstOf(channel: string): string[] {
    const seen = new Set<string>();
    for (const e of this.events()) {
      if (e.channel !== channel) continue;
      seen.add(e.user_id === undefined ? String(e.name) : `${e.name}:${e.user_id}`);
    }
    return [...seen];
  }
}
