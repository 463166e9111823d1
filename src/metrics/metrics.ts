// Prometheus metrics (prom-client). The message path only bumps plain numbers, one object per app
// that its callers keep (a session, a hub channel) instead of looking it up per message; prom-client
// reads them at scrape time through collect(), so a metric never costs a label lookup per message.
// Every label value is bounded: app ids come from the configuration, reasons and statuses from
// fixed sets. Names follow Prometheus's conventions: the unit before `_total` (`_bytes_total`), and
// prom-client's default process and Node.js metrics under their usual names (`process_*`,
// `nodejs_*`), so stock dashboards find them.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** One app's traffic on this node since it started. */
export interface AppTraffic {
  messagesIn: number;
  bytesIn: number;
  messagesOut: number;
  /** UTF-8 bytes of the frames delivered (not string length). */
  bytesOut: number;
}

/** Where the message path finds an app's traffic counters. */
export interface TrafficCounters {
  /** The app's counters: the same object for the node's lifetime. */
  traffic(appId: string): AppTraffic;
}

export interface WebhookCounts {
  /** Requests the receiver answered with a 2xx. */
  delivered: number;
  /** Failed attempts that were retried. */
  retries: number;
  /** Batches that failed for good (dead-lettered). */
  failures: number;
}

export interface WebhookStats {
  queueDepth: number;
  /** app id → its webhook counts (apps with webhooks only) */
  apps: ReadonlyMap<string, WebhookCounts>;
}

/** What the metrics read at scrape time from the rest of the node. */
export interface MetricSources {
  sessions: { localConnections(): ReadonlyMap<string, number> };
  webhooks: { stats(): WebhookStats };
  /** `received`: frames that reached this node from other nodes; the outage buffer and its refusals; frames sent by the Redis Cluster fallback. */
  backbone: { readonly received: number; readonly buffered: { readonly events: number; readonly bytes: number }; readonly refused: number; readonly fallbackSent: number };
  /** Where apps come from: up while it answers (always, for apps from the config), and its lookups. */
  appStore?: { readonly up: boolean; readonly sourceLookups: number; readonly failedLookups: number };
}

const none: MetricSources = {
  sessions: { localConnections: () => new Map() },
  webhooks: { stats: () => ({ queueDepth: 0, apps: new Map() }) },
  backbone: { received: 0, buffered: { events: 0, bytes: 0 }, refused: 0, fallbackSent: 0 },
};

export class Metrics implements TrafficCounters {
  readonly registry = new Registry();
  readonly connects: Counter<'app'>;
  readonly disconnects: Counter<'app' | 'code'>;
  /** By `reason` (see ConnectionRefusalReason); an unknown app key counts under app="". */
  readonly connectionsRefused: Counter<'app' | 'reason'>;
  /** By `reason` (see SubscriptionRefusalReason). */
  readonly subscriptionsRefused: Counter<'app' | 'reason'>;
  /** Channels with subscribers without message recovery when the node's feed of other nodes' events came back after a break. */
  readonly unrecoveredChannels: Counter<'app'>;
  /** Gaps in one channel's recorded events at this node, its opted-in subscriptions refilled from the history. */
  readonly channelGaps: Counter<'app'>;
  /**
   * REST requests answered, by app and then HTTP status, counted by the request log and read at
   * scrape time. An id in a request path that is no configured app counts under app="".
   */
  readonly restRequests = new Map<string, Map<number, number>>();
  readonly redisReconnects: Counter;
  readonly redisRoundTrip: Histogram;
  private readonly trafficByApp = new Map<string, AppTraffic>();
  private sources = none;
  private scraper = (): Promise<string> => this.registry.metrics();

  constructor() {
    collectDefaultMetrics({ register: this.registry, eventLoopMonitoringPrecision: 20 });
    const self = this;
    const registers = [this.registry];
    new Gauge({
      name: 'ripple_connections',
      help: 'Open connections on this node, by app',
      labelNames: ['app'],
      registers,
      collect() {
        this.reset();
        for (const [app, n] of self.sources.sessions.localConnections()) this.set({ app }, n);
      },
    });
    this.connects = new Counter({ name: 'ripple_connects_total', help: 'Accepted connections', labelNames: ['app'], registers });
    this.disconnects = new Counter({
      name: 'ripple_disconnects_total',
      help: 'Closed connections by close code (the reason)',
      labelNames: ['app', 'code'],
      registers,
    });
    this.connectionsRefused = new Counter({
      name: 'ripple_connections_refused_total',
      help: 'Connections refused at the handshake, by app and reason',
      labelNames: ['app', 'reason'],
      registers,
    });
    this.subscriptionsRefused = new Counter({
      name: 'ripple_subscriptions_refused_total',
      help: 'Subscriptions refused with pusher:subscription_error, by app and reason',
      labelNames: ['app', 'reason'],
      registers,
    });
    this.unrecoveredChannels = new Counter({
      name: 'ripple_backbone_unrecovered_channels_total',
      help: 'Channels with subscribers without message recovery on this node when its Redis subscription came back after a break: they may have missed events other nodes published meanwhile (counted whether or not any was published, and on Redis Cluster also when the fallback channel delivered them)',
      labelNames: ['app'],
      registers,
    });
    this.channelGaps = new Counter({
      name: 'ripple_recovery_channel_gaps_total',
      help: 'Gaps found in a channel\'s recorded events at this node (a serial after a jump: events that never reached it), its subscriptions with message recovery held and refilled from the history (or told it could not be)',
      labelNames: ['app'],
      registers,
    });
    /** A counter per app whose values are numbers kept elsewhere, read at scrape time. */
    const perApp = <T>(name: string, help: string, apps: () => Iterable<[string, T]>, read: (t: T) => number) =>
      new Counter({
        name,
        help,
        labelNames: ['app'],
        registers,
        collect() {
          this.reset();
          for (const [app, t] of apps()) this.inc({ app }, read(t));
        },
      });
    const traffic = () => this.trafficByApp;
    perApp('ripple_messages_in_total', 'Frames received from clients', traffic, (t) => t.messagesIn);
    perApp('ripple_received_bytes_total', 'Bytes received from clients', traffic, (t) => t.bytesIn);
    perApp('ripple_messages_out_total', 'Frames sent to clients (channel deliveries)', traffic, (t) => t.messagesOut);
    perApp('ripple_sent_bytes_total', 'UTF-8 bytes sent to clients (channel deliveries)', traffic, (t) => t.bytesOut);
    new Counter({
      name: 'ripple_backbone_messages_received_total',
      help: 'Frames received from other nodes through Redis',
      registers,
      collect() {
        this.reset();
        this.inc(self.sources.backbone.received);
      },
    });
    new Gauge({
      name: 'ripple_backbone_buffer_events',
      help: 'Cross-node events waiting for Redis on this node (the outage buffer)',
      registers,
      collect() {
        this.set(self.sources.backbone.buffered.events);
      },
    });
    new Gauge({
      name: 'ripple_backbone_buffer_bytes',
      help: 'UTF-8 bytes of the frames waiting in the outage buffer',
      registers,
      collect() {
        this.set(self.sources.backbone.buffered.bytes);
      },
    });
    new Counter({
      name: 'ripple_backbone_refused_total',
      help: 'Events refused (HTTP 503, pusher:error 4301) because the outage buffer was full or too old',
      registers,
      collect() {
        this.reset();
        this.inc(self.sources.backbone.refused);
      },
    });
    new Counter({
      name: 'ripple_backbone_fallback_sent_total',
      help: 'Redis Cluster: channel frames also published on the fallback channel because their shard did not take them (a failover)',
      registers,
      collect() {
        this.reset();
        this.inc(self.sources.backbone.fallbackSent);
      },
    });
    new Counter({
      name: 'ripple_rest_requests_total',
      help: 'REST API requests by app and HTTP status',
      labelNames: ['app', 'status'],
      registers,
      collect() {
        this.reset();
        for (const [app, byStatus] of self.restRequests) for (const [status, n] of byStatus) this.inc({ app, status: String(status) }, n);
      },
    });
    new Gauge({
      name: 'ripple_webhook_queue_depth',
      help: 'Webhook events waiting for delivery',
      registers,
      collect() {
        this.set(self.sources.webhooks.stats().queueDepth);
      },
    });
    const webhooks = () => this.sources.webhooks.stats().apps;
    perApp('ripple_webhook_deliveries_total', 'Webhook requests delivered (answered with a 2xx)', webhooks, (c) => c.delivered);
    perApp('ripple_webhook_retries_total', 'Webhook attempts that failed and were retried', webhooks, (c) => c.retries);
    perApp('ripple_webhook_failures_total', 'Webhook batches that failed for good (dead-lettered)', webhooks, (c) => c.failures);
    new Gauge({
      name: 'ripple_app_store_up',
      help: 'Whether the app database answers (1; always, for apps from the config); while 0, apps already loaded keep working',
      registers,
      collect() {
        this.set(self.sources.appStore?.up === false ? 0 : 1);
      },
    });
    new Counter({
      name: 'ripple_app_store_lookups_total',
      help: 'App lookups sent to the app database (not answered from memory), by result',
      labelNames: ['result'],
      registers,
      collect() {
        this.reset();
        const s = self.sources.appStore;
        if (!s) return;
        this.inc({ result: 'answered' }, s.sourceLookups - s.failedLookups);
        this.inc({ result: 'failed' }, s.failedLookups);
      },
    });
    this.redisReconnects = new Counter({ name: 'ripple_redis_reconnects_total', help: 'Redis reconnections', registers });
    this.redisRoundTrip = new Histogram({
      name: 'ripple_redis_round_trip_seconds',
      help: 'Redis PING round-trip time',
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5],
      registers,
    });
  }

  traffic(appId: string): AppTraffic {
    let t = this.trafficByApp.get(appId);
    if (!t) this.trafficByApp.set(appId, (t = { messagesIn: 0, bytesIn: 0, messagesOut: 0, bytesOut: 0 }));
    return t;
  }

  /** Where the scrape-time figures come from; set once the node's parts exist. */
  collectFrom(sources: MetricSources): void {
    this.sources = sources;
  }

  /** The Prometheus text a scrape answers: this process's registry, or what `scrapeThrough` set. */
  scrape(): Promise<string> {
    return this.scraper();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** Scrapes answer with another text (one process per core: every process's figures, from the primary). */
  scrapeThrough(scraper: () => Promise<string>): void {
    this.scraper = scraper;
  }
}
