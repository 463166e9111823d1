// Prometheus metrics (prom-client). The message path only bumps plain numbers; prom-client reads them
// at scrape time through collect(), so a metric never costs a label lookup per message.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface HotCounters {
  messagesIn: number;
  bytesIn: number;
  messagesOut: number;
  /** UTF-8 bytes of the frames delivered (not string length). */
  bytesOut: number;
}

export interface WebhookStats {
  queueDepth: number;
  delivered: number;
  retries: number;
  failures: number;
}

/** What the metrics read at scrape time from the rest of the node. */
export interface MetricSources {
  sessions: { localConnections(): ReadonlyMap<string, number> };
  webhooks: { stats(): WebhookStats };
  /** `received`: frames that reached this node from other nodes; the outage buffer and its refusals. */
  backbone: { readonly received: number; readonly buffered: { readonly events: number; readonly bytes: number }; readonly refused: number };
}

const none: MetricSources = {
  sessions: { localConnections: () => new Map() },
  webhooks: { stats: () => ({ queueDepth: 0, delivered: 0, retries: 0, failures: 0 }) },
  backbone: { received: 0, buffered: { events: 0, bytes: 0 }, refused: 0 },
};

export class Metrics {
  readonly registry = new Registry();
  readonly hot: HotCounters = { messagesIn: 0, bytesIn: 0, messagesOut: 0, bytesOut: 0 };
  readonly connects: Counter<'app'>;
  readonly disconnects: Counter<'app' | 'code'>;
  /** `open_files`: the descriptor reserve was reached; `connection_quota`: the app's maxConnections. */
  readonly connectionsRefused: Counter<'reason'>;
  readonly restRequests: Counter<'status'>;
  readonly redisReconnects: Counter;
  readonly redisRoundTrip: Histogram;
  private sources = none;

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'ripple_', eventLoopMonitoringPrecision: 20 });
    const hot = this.hot;
    const self = this;
    new Gauge({
      name: 'ripple_connections',
      help: 'Open connections on this node, by app',
      labelNames: ['app'],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const [app, n] of self.sources.sessions.localConnections()) this.set({ app }, n);
      },
    });
    this.connects = new Counter({ name: 'ripple_connects_total', help: 'Accepted connections', labelNames: ['app'], registers: [this.registry] });
    this.disconnects = new Counter({
      name: 'ripple_disconnects_total',
      help: 'Closed connections by close code (the reason)',
      labelNames: ['app', 'code'],
      registers: [this.registry],
    });
    this.connectionsRefused = new Counter({
      name: 'ripple_connections_refused_total',
      help: 'Connections refused at the upgrade for lack of room, by reason',
      labelNames: ['reason'],
      registers: [this.registry],
    });
    /** A counter whose value is a monotonic number kept elsewhere, read at scrape time. */
    const readCounter = (name: string, help: string, read: () => number) =>
      new Counter({
        name,
        help,
        registers: [this.registry],
        collect() {
          this.reset();
          this.inc(read());
        },
      });
    readCounter('ripple_messages_in_total', 'Frames received from clients', () => hot.messagesIn);
    readCounter('ripple_bytes_in_total', 'Bytes received from clients', () => hot.bytesIn);
    readCounter('ripple_messages_out_total', 'Frames sent to clients (channel deliveries)', () => hot.messagesOut);
    readCounter('ripple_bytes_out_total', 'UTF-8 bytes sent to clients (channel deliveries)', () => hot.bytesOut);
    readCounter('ripple_backbone_messages_received_total', 'Frames received from other nodes through Redis', () => self.sources.backbone.received);
    new Gauge({
      name: 'ripple_backbone_buffer_events',
      help: 'Cross-node events waiting for Redis on this node (the outage buffer)',
      registers: [this.registry],
      collect() {
        this.set(self.sources.backbone.buffered.events);
      },
    });
    new Gauge({
      name: 'ripple_backbone_buffer_bytes',
      help: 'UTF-8 bytes of the frames waiting in the outage buffer',
      registers: [this.registry],
      collect() {
        this.set(self.sources.backbone.buffered.bytes);
      },
    });
    readCounter('ripple_backbone_refused_total', 'Events refused (HTTP 503, pusher:error 4301) because the outage buffer was full or too old', () => self.sources.backbone.refused);
    this.restRequests = new Counter({ name: 'ripple_rest_requests_total', help: 'REST API requests by HTTP status', labelNames: ['status'], registers: [this.registry] });
    new Gauge({
      name: 'ripple_webhook_queue_depth',
      help: 'Webhook events waiting for delivery',
      registers: [this.registry],
      collect() {
        this.set(self.sources.webhooks.stats().queueDepth);
      },
    });
    readCounter('ripple_webhook_deliveries_total', 'Webhook requests delivered', () => self.sources.webhooks.stats().delivered);
    readCounter('ripple_webhook_retries_total', 'Webhook delivery retries', () => self.sources.webhooks.stats().retries);
    readCounter('ripple_webhook_failures_total', 'Webhook batches that failed for good (dead-lettered)', () => self.sources.webhooks.stats().failures);
    this.redisReconnects = new Counter({ name: 'ripple_redis_reconnects_total', help: 'Redis reconnections', registers: [this.registry] });
    this.redisRoundTrip = new Histogram({
      name: 'ripple_redis_round_trip_seconds',
      help: 'Redis PING round-trip time',
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5],
      registers: [this.registry],
    });
  }

  /** Where the scrape-time figures come from; set once the node's parts exist. */
  collectFrom(sources: MetricSources): void {
    this.sources = sources;
  }
}
