// What an operator reads about Redis during an outage: one warning when the node loses Redis, a
// summary every SUMMARY_MS while it stays away (how long, how many reconnect attempts, the last
// error), and one line when every connection is back. ioredis reports each connection's every failed
// attempt (a close, an error, a reconnect, several a second per connection); those go to debug only,
// and the modules that keep work for Redis meanwhile say so at debug too.
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';

/** How often a summary is logged while Redis stays unreachable. */
export const OUTAGE_SUMMARY_MS = 15_000;

export class RedisOutageLog {
  private readonly ready = new Map<string, boolean>();
  private connected = false;
  private downSince?: number;
  private attempts = 0;
  private lastError?: string;
  private summary?: NodeJS.Timeout;
  private stopped = false;

  constructor(
    private readonly log: Logger,
    private readonly summaryMs = OUTAGE_SUMMARY_MS,
  ) {}

  watch(name: string, client: Redis): void {
    this.ready.set(name, client.status === 'ready');
    client.on('ready', () => this.up(name));
    client.on('close', () => this.down(name));
    client.on('reconnecting', () => {
      if (this.downSince !== undefined) this.attempts++;
    });
    client.on('error', (err: Error) => {
      this.lastError = err.message;
      this.log.debug({ err, connection: name }, 'redis error');
    });
  }

  /** The node disconnects on purpose (its stop): that is no outage. */
  stop(): void {
    this.stopped = true;
    if (this.summary) clearInterval(this.summary);
  }

  private up(name: string): void {
    this.ready.set(name, true);
    this.log.debug({ connection: name }, 'redis connection ready');
    if (![...this.ready.values()].every(Boolean)) return;
    if (this.downSince === undefined) {
      if (!this.connected) this.log.info({ connections: [...this.ready.keys()] }, 'redis connected');
      this.connected = true;
      return;
    }
    if (this.summary) clearInterval(this.summary);
    this.log.info({ downForMs: Date.now() - this.downSince, reconnectAttempts: this.attempts }, 'redis reachable again');
    this.downSince = undefined;
  }

  private down(name: string): void {
    this.ready.set(name, false);
    this.log.debug({ connection: name }, 'redis connection closed');
    // Before the first connect the start says Redis is not reachable yet; once down, once is enough.
    if (this.stopped || !this.connected || this.downSince !== undefined) return;
    const since = Date.now();
    this.downSince = since;
    this.attempts = 0;
    this.log.warn(
      { connection: name, error: this.lastError },
      `redis unreachable: serving local sockets, cross-node work waits for it (a summary every ${this.summaryMs / 1000} s until it is back)`,
    );
    this.summary = setInterval(() => {
      this.log.warn({ downForMs: Date.now() - since, reconnectAttempts: this.attempts, lastError: this.lastError }, 'redis still unreachable');
    }, this.summaryMs);
    this.summary.unref();
  }
}
