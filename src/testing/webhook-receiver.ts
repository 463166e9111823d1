// A webhook endpoint on 127.0.0.1 for tests: records every request's events in arrival order.
import { createServer, type Server } from 'node:http';
import { freePort } from './harness.js';

export interface WebhookEvent {
  name: string;
  channel: string;
  user_id?: string;
  [k: string]: unknown;
}

export class WebhookReceiver {
  /** Every event of every request, in the order they arrived. */
  readonly events: WebhookEvent[] = [];
  private constructor(
    private readonly server: Server,
    readonly url: string,
  ) {}

  static async start(): Promise<WebhookReceiver> {
    const port = await freePort();
    let receiver: WebhookReceiver;
    const server = createServer((req, res) => {
      let raw = '';
      req.on('data', (d) => (raw += d));
      req.on('end', () => {
        receiver.events.push(...(JSON.parse(raw) as { events: WebhookEvent[] }).events);
        res.writeHead(200).end('{}');
      });
    });
    receiver = new WebhookReceiver(server, `http://127.0.0.1:${port}/hook`);
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
    return receiver;
  }

  named(name: string, channel?: string): WebhookEvent[] {
    return this.events.filter((e) => e.name === name && (channel === undefined || e.channel === channel));
  }

  /** The channel's events in arrival order, each distinct event once (delivery is at least once). */
  firstOf(channel: string): string[] {
    const seen = new Set<string>();
    const out: string[] = [];
    for (const e of this.events) {
      if (e.channel !== channel) continue;
      const id = e.user_id === undefined ? e.name : `${e.name}:${e.user_id}`;
      if (seen.has(id)) continue;
      seen.add(id);
      out.push(id);
    }
    return out;
  }

  stop(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
