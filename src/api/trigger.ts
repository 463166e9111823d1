// Triggering events (spec §9.3): POST /apps/<id>/events and batch_events. The Fastify routes and the
// uWS fast path (transport/rest-bridge.ts) both call this, with the same checks, quotas, errors, metrics and
// request log.
import type { Logger } from 'pino';
import type { App } from '../apps/app.js';
import type { AppStore } from '../apps/store.js';
import type { ChannelCache } from '../cache/channel-cache.js';
import type { LocalDelivery } from '../backbone/backbone.js';
import type { Channels } from '../channels/channels.js';
import type { RateWindows } from '../limits/rate-windows.js';
import type { PresenceStore } from '../presence/store.js';
import { diagnoseRest } from '../console/doctor.js';
import { cut } from '../console/events.js';
import type { ConsoleTap } from '../console/tap.js';
import { channelKind, isCacheChannel } from '../protocol/channels.js';
import { encryptData, isEncryptedPayload } from '../protocol/encryption.js';
import * as frames from '../protocol/frames.js';
import { errorResponse, HttpError, parseBody } from './errors.js';
import { spend, type SetHeader } from './rate-limit.js';
import type { RequestLog } from './request-log.js';
import { MAX_TIMESTAMP_SKEW_S, verifySignedRequest, type SignedRequest } from './signed-request.js';
import { parseTrigger, type TriggerEvent } from './validate.js';

export interface TriggerDeps {
  apps: AppStore;
  /** publishes channel events (recorded where the channel keeps a history) */
  channels: Channels;
  store: PresenceStore;
  cache: ChannelCache;
  rates: RateWindows;
  /** the fast path's requests are counted and logged here (Fastify's by its own hook) */
  requests: RequestLog;
  log: Logger;
  /** the debug console (issue 21): each API message, and each refused request with the doctor's look */
  tap: ConsoleTap;
}

export type ChannelAttrs = { user_count?: number; subscription_count?: number };

export type TriggerRoute = 'events' | 'batch_events';

export interface TriggerResponse {
  status: number;
  headers: Readonly<Record<string, string>>;
  body: string;
}

/** A trigger's events, checked, and what they are for. */
interface Prepared {
  route: TriggerRoute;
  app: App;
  events: TriggerEvent[];
}

/** One event to one channel, its frame built. */
interface Outgoing {
  name: string;
  channel: string;
  data: string;
  frame: string;
  socketId?: string;
}

/** The answer's headers (the fast path's, as they are: the bridge writes them without looking at them). */
export const OK_HEADERS: Readonly<Record<string, string>> = Object.freeze({ 'content-type': 'application/json; charset=utf-8' });

export class Trigger {
  /**
   * The fast path's local fan-outs, made after their answers have left (see handle), in order, at the
   * end of the event-loop turn (`setImmediate`: uWS sends a response corked, when its request's
   * callback returns).
   */
  private pending: LocalDelivery[] = [];
  private readonly fanOut = (): void => this.deliverPending();

  constructor(private readonly d: TriggerDeps) {}

  /** POST events: one event to one or more channels. */
  async events(app: App, body: unknown, header: SetHeader): Promise<object> {
    return this.run('events', app, this.parse('events', app, body), header);
  }

  /** POST batch_events: validated whole before any of it is published. */
  async batch(app: App, raw: unknown, header: SetHeader): Promise<object> {
    return this.run('batch_events', app, this.parse('batch_events', app, raw), header);
  }

  /** A request's events, every check of its body made (HttpError otherwise). */
  private parse(route: TriggerRoute, app: App, raw: unknown): TriggerEvent[] {
    if (route === 'events') return [parseTrigger(app, raw)];
    const body = raw as { batch?: unknown };
    if (!body || !Array.isArray(body.batch)) throw new HttpError(400, '"batch" must be an array of events');
    if (body.batch.length > app.maxEventBatchSize) throw new HttpError(400, `A batch holds at most ${app.maxEventBatchSize} events`);
    return body.batch.map((e, i) => parseTrigger(app, e, `batch[${i}]`, true));
  }

  /** The rate budget, the callers' info, publishing; the answer's body. */
  private async run(route: TriggerRoute, app: App, events: TriggerEvent[], header: SetHeader): Promise<object> {
    await spend(this.d.rates, app, header, 'backend', route === 'events' ? events[0].channels.length : events.length);
    if (route === 'events') {
      const channels = events[0].info ? await this.info(app, events[0]) : undefined;
      await this.publish(app, events, header);
      return channels ? { channels } : {};
    }
    const results = await Promise.all(events.map((ev) => (ev.info ? this.info(app, ev) : undefined)));
    await this.publish(app, events, header);
    if (!events.some((e) => e.info)) return {};
    return { batch: results.map((r, i) => (r ? r[events[i].channels[0]] : {})) };
  }

  /**
   * A whole signed trigger request outside Fastify (the uWS bridge): never throws. The common trigger
   * (the app known at once, no rate budget, no `info`, no cache channel, the backbone writing now) is
   * answered in this call, with no promise: its events are sent to the other nodes (in Redis, into the
   * socket's kernel buffer), the answer is returned for the caller to send, and the local fan-out
   * follows at the end of the event-loop turn. Anything else is answered through a promise.
   */
  handle(route: TriggerRoute, req: SignedRequest): TriggerResponse | Promise<TriggerResponse> {
    const started = this.d.requests.started();
    try {
      const verified = verifySignedRequest(this.d.apps, req);
      if (verified instanceof Promise) return this.later(req, started, verified.then((v) => ({ route, app: v.app, events: this.parse(route, v.app, parseBody(req.rawBody)) })));
      const app = verified.app;
      const events = this.parse(route, app, parseBody(req.rawBody));
      if (!this.publishesNow(app, events)) return this.later(req, started, { route, app, events });
      const local = this.d.channels.publishAcross(app, this.outgoing(app, events));
      if (this.pending.length === 0) setImmediate(this.fanOut);
      for (let i = 0; i < local.length; i++) this.pending.push(local[i]);
      this.tapped(app, events);
      return this.answered(req, started, 200, OK_HEADERS, '{}');
    } catch (err) {
      return this.refused(req, started, err as Error, {});
    }
  }

  /** Whether a trigger can be published in this call: nothing to wait for, nothing that may refuse it after its checks. */
  private publishesNow(app: App, events: TriggerEvent[]): boolean {
    if (app.maxBackendEventsPerSecond >= 0) return false;
    for (const ev of events) {
      if (ev.info) return false;
      for (const channel of ev.channels) if (isCacheChannel(channel)) return false;
    }
    return this.d.channels.writesNow();
  }

  private async later(req: SignedRequest, started: number, prepared: Prepared | Promise<Prepared>): Promise<TriggerResponse> {
    const headers: Record<string, string> = {};
    const header: SetHeader = (name, value) => void (headers[name.toLowerCase()] = value);
    try {
      const { route, app, events } = await prepared;
      const body = await this.run(route, app, events, header);
      headers['content-type'] = OK_HEADERS['content-type'];
      return this.answered(req, started, 200, headers, JSON.stringify(body));
    } catch (err) {
      return this.refused(req, started, err as Error, headers);
    }
  }

  private answered(req: SignedRequest, started: number, status: number, headers: Readonly<Record<string, string>>, body: string, failure?: string): TriggerResponse {
    this.d.requests.done(req.appId, req.method, req.path, status, this.d.requests.since(started), failure);
    return { status, headers, body };
  }

  private refused(req: SignedRequest, started: number, err: Error, headers: Record<string, string>): TriggerResponse {
    const { status, body } = errorResponse(err, this.d.log);
    if (this.d.tap.on && this.d.tap.watches(req.appId)) void refusedRequest(this.d.tap, this.d.apps, req, status, body.error);
    headers['content-type'] = OK_HEADERS['content-type'];
    return this.answered(req, started, status, headers, JSON.stringify(body), body.error);
  }

  /** The fast path's local fan-outs, in order (also before a later trigger of the async path publishes). */
  private deliverPending(): void {
    if (this.pending.length === 0) return;
    const local = this.pending;
    this.pending = [];
    try {
      this.d.channels.deliverLocally(local);
    } catch (err) {
      this.d.log.error({ err }, 'local fan-out of triggered events failed');
    }
  }

  /** Each event to each of its channels: the frame built once (sealed for an encrypted channel). */
  private outgoing(app: App, events: TriggerEvent[]): Outgoing[] {
    const out: Outgoing[] = [];
    for (const ev of events) {
      for (const channel of ev.channels) {
        const data = this.sealed(app, channel, ev.data);
        out.push({ name: ev.name, channel, data, frame: frames.channelEvent(ev.name, channel, data), socketId: ev.socketId });
      }
    }
    return out;
  }

  /**
   * Publishes every event to every channel, or nothing: everything that can fail (the callers' info
   * queries, room in the outage buffer, the cache record) is settled before the first frame goes out,
   * so an answer other than 200 means nothing was delivered, and a 200 that everything will be.
   */
  private async publish(app: App, events: TriggerEvent[], header: SetHeader): Promise<void> {
    const out = this.outgoing(app, events);
    if (!this.d.channels.hasRoom(out.map((o) => o.frame))) {
      header('Retry-After', '1');
      throw new HttpError(503, 'Other nodes cannot be reached and the outage buffer is full: nothing was published, try again shortly');
    }
    // Cache channels keep the last event published through the API (spec §7).
    const cached = out.filter((o) => isCacheChannel(o.channel));
    if (cached.length > 0) {
      await Promise.all(cached.map((o) => this.d.cache.set(app.id, o.channel, { event: o.name, data: o.data }))).catch((err) => {
        this.d.log.debug({ err, app: app.id }, 'cache channel event not recorded');
        throw new HttpError(503, 'The cache channel\'s event cannot be recorded now: nothing was published, try again shortly');
      });
    }
    // A fast-path trigger answered before this one reaches the local subscribers first.
    this.deliverPending();
    for (const o of out) this.d.channels.publishEvent(app, o.channel, o.frame, o.socketId);
    this.tapped(app, events);
    // The answer leaves once the events are on their way to the other nodes (Redis: on its socket,
    // after whatever this node's outbox had in flight): a trigger the backend sends after it, through
    // another node, reaches Redis after these.
    const written = this.d.channels.written();
    if (written) await written;
  }

  /** The debug console's view of each published event. */
  private tapped(app: App, events: TriggerEvent[]): void {
    const tap = this.d.tap;
    if (tap.on && tap.watches(app.id)) {
      for (const ev of events) tap.emit({ type: 'api_message', appId: app.id, channels: ev.channels, event: ev.name, data: cut(ev.data), detail: { excludedSocketId: ev.socketId, batch: events.length > 1 || undefined } });
    }
  }

  private async info(app: App, ev: TriggerEvent): Promise<Record<string, ChannelAttrs>> {
    const out: Record<string, ChannelAttrs> = {};
    await Promise.all(ev.channels.map(async (channel) => (out[channel] = await this.attrs(app, channel, ev.info!))));
    return out;
  }

  /**
   * Data for an encrypted channel from a backend that could not encrypt it: encrypted here when the
   * app gave its master key; data an SDK already encrypted is relayed untouched (spec §3.2).
   */
  private sealed(app: App, channel: string, data: string): string {
    if (!app.encryptionMasterKey || channelKind(channel) !== 'encrypted' || isEncryptedPayload(data)) return data;
    return encryptData(channel, app.encryptionMasterKey, data);
  }

  private async attrs(app: App, channel: string, info: string[]): Promise<ChannelAttrs> {
    const presence = channelKind(channel) === 'presence';
    const a: ChannelAttrs = {};
    if (presence && info.includes('user_count')) a.user_count = await this.d.store.userCount(app.id, channel);
    if (!presence && app.enableSubscriptionCount && info.includes('subscription_count')) a.subscription_count = await this.d.store.subscriptionCount(app.id, channel);
    return a;
  }
}

/**
 * A refused REST request, for the console: its status and error and, for a refused signature, the
 * doctor's look (api/signed-request.ts's checks, step by step). Never throws.
 */
export async function refusedRequest(tap: ConsoleTap, apps: AppStore, req: SignedRequest, status: number, error: string | undefined): Promise<void> {
  try {
    const query: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.query)) query[k.toLowerCase()] = Array.isArray(v) ? String(v[v.length - 1]) : String(v);
    const app = status === 401 || status === 403 || status === 404 ? await apps.findById(req.appId) : undefined;
    const doctor = app !== undefined || status === 404 ? diagnoseRest(app, app?.enabled ?? false, tap.peers(), { method: req.method, path: req.path, query, rawBody: req.rawBody }, Date.now(), MAX_TIMESTAMP_SKEW_S) : undefined;
    tap.emit({ type: 'api_refused', appId: req.appId, detail: { method: req.method, path: req.path, status, error }, doctor });
  } catch {
    // the console must never disturb what it watches
  }
}
