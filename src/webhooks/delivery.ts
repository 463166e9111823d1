// Webhook delivery: events are matched against each endpoint's filter when they happen, queued per
// (app, endpoint), and sent in batches, in order, at least once. A failed batch is retried with
// exponential backoff and jitter, then probed with its first event alone, until maxRetryMs has
// passed; it then goes to the dead-letter list, from which an operator can replay it. Everything here is asynchronous I/O: the gateway only ever
// calls emit(), which appends to a queue and returns. Every attempt is logged at debug level and
// counted per app; a log line names the endpoint without its credentials or query.
import type { ConsoleTap } from '../console/tap.js';
import type { Logger } from 'pino';
import type { App } from '../apps/app.js';
import type { AppStore } from '../apps/store.js';
import type { WebhookConfig } from '../config/schema.js';
import type { WebhookCounts, WebhookStats } from '../metrics/metrics.js';
import type { WebhookEvent, WebhookSink } from './sink.js';
import type { DeadLetter, QueuedEvent, WebhookQueue } from './queue.js';
import { endpointFilters, wants, type EndpointFilter } from './routes.js';
import { sendWebhook } from './send.js';

export interface DeliverySettings {
  batchMs: number;
  timeoutMs: number;
  maxRetryMs: number;
}

interface Endpoint extends EndpointFilter {
  app: App;
  url: string;
  /** The URL as logged: no user, password or query (where webhook receivers put their tokens). */
  shownUrl: string;
  /** The app's counters (shared by its endpoints). */
  counts: WebhookCounts;
  headers: Record<string, string>;
}

interface Worker {
  ep: Endpoint;
  running: boolean;
  again: boolean;
  /** Ends the current backoff sleep early (used on close). */
  cut?: () => void;
}

const MAX_EVENTS_PER_REQUEST = 100;
const BACKOFF_BASE_MS = 250;
/**
 * Retries never wait longer than this, so a receiver back from an outage gets its backlog within
 * about a second (a 30 s backoff cap left it waiting up to 30 s). What keeps a receiver that is
 * still down from being flooded is what a retry carries: see FULL_BATCH_ATTEMPTS.
 */
const BACKOFF_CAP_MS = 1000;
/**
 * The first attempts send the whole batch (up to 100 events); after them, until one succeeds, each
 * retry is a probe carrying the batch's first event alone (a real, valid webhook of a few hundred
 * bytes), and the rest follows at once when the receiver takes it.
 */
const FULL_BATCH_ATTEMPTS = 3;

/** Delay before retry number `attempt` (1-based): exponential, capped, with jitter in [50%, 100%]. */
export function backoffDelay(attempt: number, random = Math.random): number {
  const ceiling = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** Math.min(attempt - 1, 20));
  return Math.round(ceiling * (0.5 + random() / 2));
}

/** A URL without what may be a secret in it: user and password, and the query. */
function shownUrl(url: string): string {
  try {
    const u = new URL(url);
    return u.origin + u.pathname;
  } catch {
    return '(invalid URL)';
  }
}

export class WebhookDelivery implements WebhookSink {
  private readonly byApp = new Map<string, Endpoint[]>();
  private readonly workers = new Map<string, Worker>();
  private started = false;
  private closed = false;
  /** app id → its counts, for the apps that have webhooks */
  private readonly counters = new Map<string, WebhookCounts>();

  constructor(
    apps: AppStore,
    private readonly queue: WebhookQueue,
    private readonly settings: DeliverySettings,
    private readonly log: Logger,
    /** the debug console (issue 21): each attempt */
    private readonly tap: ConsoleTap,
  ) {
    for (const app of apps.all()) this.setEndpoints(app);
    // Endpoints follow the app store: an app's events go to its endpoints as they are now, signed with
    // its secret as it is now (a batch being retried takes the new secret at its next attempt).
    apps.onChange((change) => {
      if (change.kind === 'removed') this.removeEndpoints(change.previous.id);
      else this.setEndpoints(change.app);
      if (this.started) this.queue.setQueues([...this.workers.keys()]);
    });
  }

  private setEndpoints(app: App): void {
    if (!app.webhooks.length) return this.removeEndpoints(app.id);
    let counts = this.counters.get(app.id);
    if (!counts) this.counters.set(app.id, (counts = { delivered: 0, retries: 0, failures: 0 }));
    const filters = endpointFilters(app);
    const eps = app.webhooks.map((w: WebhookConfig, i) => ({ ...filters[i], app, url: w.url, shownUrl: shownUrl(w.url), counts, headers: w.headers }));
    const queues = new Set(eps.map((ep) => ep.queue));
    for (const ep of this.byApp.get(app.id) ?? []) if (!queues.has(ep.queue)) this.workers.delete(ep.queue);
    this.byApp.set(app.id, eps);
    for (const ep of eps) {
      const w = this.workers.get(ep.queue);
      if (w) w.ep = ep;
      else this.workers.set(ep.queue, { ep, running: false, again: false });
    }
  }

  /** The app's endpoints are gone: nothing more is queued for them, and their queues are no longer delivered. */
  private removeEndpoints(appId: string): void {
    for (const ep of this.byApp.get(appId) ?? []) {
      this.workers.get(ep.queue)?.cut?.();
      this.workers.delete(ep.queue);
    }
    this.byApp.delete(appId);
    this.counters.delete(appId);
  }

  async start(): Promise<void> {
    this.queue.onWake((q) => this.kick(q));
    await this.queue.start([...this.workers.keys()]);
    this.started = true;
    for (const q of this.workers.keys()) this.kick(q);
  }

  emit(app: App, event: WebhookEvent): void {
    const eps = this.byApp.get(app.id);
    if (!eps || this.closed) return;
    const t = Date.now();
    for (const ep of eps) if (wants(ep, event.name, event.channel)) this.queue.append(ep.queue, [{ t, ev: event }]);
  }

  stats(): WebhookStats {
    return { queueDepth: this.queue.depth(), apps: this.counters };
  }

  listDead(appId: string): Promise<DeadLetter[]> {
    return this.queue.listDead(appId);
  }

  /** Puts the app's dead letters back on their endpoints' queues; returns how many events went back. */
  async replayDead(appId: string): Promise<number> {
    const dead = await this.queue.takeDead(appId);
    const eps = this.byApp.get(appId) ?? [];
    let events = 0;
    const t = Date.now();
    for (const rec of dead) {
      const ep = eps.find((e) => e.url === rec.url);
      if (!ep) {
        // The endpoint is no longer configured: keep the record rather than lose it.
        await this.queue.pushDead(rec);
        continue;
      }
      this.queue.append(ep.queue, rec.events.map((ev) => ({ t, ev })));
      events += rec.events.length;
    }
    return events;
  }

  private kick(q: string): void {
    const w = this.workers.get(q);
    if (!w || this.closed) return;
    if (w.running) {
      w.again = true;
      return;
    }
    w.running = true;
    void this.run(w).finally(() => {
      w.running = false;
      if (w.again) {
        w.again = false;
        this.kick(q);
      }
    });
  }

  private async run(w: Worker): Promise<void> {
    const q = w.ep.queue;
    let waited = false;
    // Stops when the endpoint is removed (the worker is no longer the queue's).
    while (!this.closed && this.queue.owns(q) && this.workers.get(q) === w) {
      w.again = false;
      let batch: QueuedEvent[];
      try {
        batch = await this.queue.read(q, MAX_EVENTS_PER_REQUEST);
      } catch (err) {
        this.log.debug({ err, queue: q }, 'webhook queue read failed');
        await this.sleep(w, 1000);
        continue;
      }
      if (!batch.length) return;
      // The batching window: let events that belong together go out in one request.
      const age = Date.now() - batch[0].t;
      if (!waited && batch.length < MAX_EVENTS_PER_REQUEST && age < this.settings.batchMs) {
        await this.sleep(w, this.settings.batchMs - age);
        waited = true;
        continue;
      }
      waited = false;
      const outcome = await this.deliver(w, batch);
      if (outcome === 'abandoned') return;
      await this.ack(w, batch.map((e) => e.id));
    }
  }

  private async deliver(w: Worker, batch: QueuedEvent[]): Promise<'delivered' | 'dead' | 'abandoned'> {
    /** Events of the batch the receiver has not taken yet. */
    let pending = batch.map((e) => e.ev).filter((ev) => (ev as { name?: string }).name !== 'invalid');
    if (!pending.length) return 'delivered';
    const first = Date.now();
    let failures = 0;
    for (let attempt = 1; ; attempt++) {
      // The endpoint as it is now: its app may have changed (a new secret) since the last attempt.
      const ep = w.ep;
      const sent = failures >= FULL_BATCH_ATTEMPTS ? pending.slice(0, 1) : pending;
      const started = performance.now();
      const res = await sendWebhook({
        url: ep.url,
        key: ep.app.key,
        secret: ep.app.secret,
        headers: ep.headers,
        events: sent,
        timeoutMs: this.settings.timeoutMs,
      });
      this.log.debug(
        { app: ep.app.id, url: ep.shownUrl, attempt, events: sent.length, ...(res.ok ? { status: res.status } : { error: res.error }), ms: Math.round(performance.now() - started) },
        'webhook attempt',
      );
      if (this.tap.on && this.tap.watches(ep.app.id)) {
        const dead = !res.ok && Date.now() - first >= this.settings.maxRetryMs;
        this.tap.emit({
          type: 'webhook',
          appId: ep.app.id,
          detail: { url: ep.shownUrl, attempt, events: sent.map((e) => (e as { name?: string }).name).join(','), status: res.ok ? res.status : undefined, error: res.ok ? undefined : res.error, ms: Math.round(performance.now() - started), deadLetter: dead || undefined },
        });
      }
      if (res.ok) {
        ep.counts.delivered++;
        pending = pending.slice(sent.length);
        if (pending.length) {
          // A probe got through: the receiver is back, the rest goes now.
          failures = 0;
          continue;
        }
        if (attempt > 1) this.log.info({ app: ep.app.id, url: ep.shownUrl, attempts: attempt }, 'webhook delivered after retries');
        return 'delivered';
      }
      failures++;
      const elapsed = Date.now() - first;
      if (elapsed >= this.settings.maxRetryMs) {
        ep.counts.failures++;
        this.log.warn({ app: ep.app.id, url: ep.shownUrl, attempts: attempt, error: res.error, events: pending.length }, 'webhook dead-lettered');
        const rec: DeadLetter = { appId: ep.app.id, url: ep.url, events: pending, firstAttemptAt: first, failedAt: Date.now(), attempts: attempt, error: res.error };
        for (;;) {
          try {
            await this.queue.pushDead(rec);
            return 'dead';
          } catch (err) {
            this.log.debug({ err }, 'dead letter not stored yet');
            if (this.closed) return 'abandoned';
            await this.sleep(w, 1000);
          }
        }
      }
      ep.counts.retries++;
      if (attempt === 1) this.log.warn({ app: ep.app.id, url: ep.shownUrl, error: res.error }, 'webhook delivery failed, retrying');
      await this.sleep(w, Math.min(backoffDelay(failures), this.settings.maxRetryMs - elapsed));
      // Shut down, the endpoint removed, or another node took the queue over (it will send this batch again).
      if (this.closed || !this.queue.owns(ep.queue) || this.workers.get(ep.queue) !== w) return 'abandoned';
    }
  }

  private async ack(w: Worker, ids: string[]): Promise<void> {
    for (;;) {
      try {
        return await this.queue.ack(w.ep.queue, ids);
      } catch (err) {
        this.log.debug({ err }, 'webhook ack failed, retrying');
        if (this.closed) return;
        await this.sleep(w, 500);
      }
    }
  }

  private sleep(w: Worker, ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(done, Math.max(0, ms));
      function done() {
        clearTimeout(t);
        w.cut = undefined;
        resolve();
      }
      w.cut = done;
    });
  }

  /**
   * Stops delivery. In memory mode, first gives queued events up to drainMs to go out (what is left
   * then is lost, and logged); in Redis mode the queue hands its streams to the other nodes.
   */
  async close(drainMs = 0): Promise<void> {
    const deadline = Date.now() + drainMs;
    while (drainMs > 0 && this.queue.depth() > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    this.closed = true;
    for (const w of this.workers.values()) w.cut?.();
    await this.queue.close();
  }
}
