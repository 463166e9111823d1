// One console stream to a viewer (a page or `ripple tail`): Server-Sent Events, filtered by type and
// channel, at a bounded rate. What goes over the rate, or arrives while the connection cannot take
// more, is left out and counted; once a second the count goes out as one `skipped` record, so the
// viewer knows and the node never buffers without bound.
import type { ConsoleEvent, ConsoleEventType, ConsoleWireEvent } from './events.js';

export const DEFAULT_RATE = 100;
export const MAX_RATE = 1000;
/** A comment line now and then keeps proxies from closing a quiet stream. */
const HEARTBEAT_TICKS = 15;

export interface StreamFilter {
  types?: ReadonlySet<ConsoleEventType>;
  channel?: string;
}

/** Writes one chunk; false when the connection's buffer is full (the next ones wait for `writable`). */
export type Write = (chunk: string) => boolean;

export class ConsoleStream {
  private sent = 0;
  private skipped = 0;
  private blocked = false;
  private ticks = 0;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly write: Write,
    /** events per second at most */
    private readonly rate: number,
    private readonly filter: StreamFilter,
  ) {
    this.timer = setInterval(() => this.tick(), 1000).unref();
  }

  push(ev: ConsoleEvent, json: string): void {
    if (this.filter.types && !this.filter.types.has(ev.type)) return;
    if (this.filter.channel !== undefined && ev.channel !== this.filter.channel && !ev.channels?.includes(this.filter.channel)) return;
    // The overview's samples (one per node every 5 s) are not the app's events: they do not count against the rate.
    const counted = ev.type !== 'stats';
    if (this.blocked || (counted && this.sent >= this.rate)) {
      this.skipped++;
      return;
    }
    if (counted) this.sent++;
    this.send(`data: ${json}\n\n`);
  }

  /** The connection took what was waiting: writing goes on. */
  writable(): void {
    this.blocked = false;
  }

  private tick(): void {
    this.sent = 0;
    if (this.blocked) return;
    if (this.skipped > 0) {
      const skipped: ConsoleWireEvent = { type: 'skipped', appId: '', time: Date.now(), count: this.skipped };
      this.skipped = 0;
      this.send(`data: ${JSON.stringify(skipped)}\n\n`);
    } else if (++this.ticks % HEARTBEAT_TICKS === 0) {
      this.send(': keep-alive\n\n');
    }
  }

  private send(chunk: string): void {
    if (!this.write(chunk)) this.blocked = true;
  }

  close(): void {
    clearInterval(this.timer);
  }
}

/** The rate a viewer asked for, within 1..MAX_RATE. */
export function rateOf(asked: string | null): number {
  const n = Number(asked);
  return asked && Number.isFinite(n) ? Math.min(Math.max(Math.floor(n), 1), MAX_RATE) : DEFAULT_RATE;
}
