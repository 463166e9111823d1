// Prometheus metrics (prom-client). The message path only bumps plain numbers; prom-client reads them
// at scrape time through collect(), so a metric never costs a label lookup per message.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface HotCounters {
  messagesIn: number;
  bytesIn: number;
  messagesOut: number;
  bytesOut: number;
}

export interface WebhookStatsSource {
  stats(): { queueDepth: number; delivered: number; retries: number; failures: number; deadLetters?: number };
}

export class Metrics {
  readonly registry = new Registry();
  readonly hot: HotCounters = { messagesIn: 0, bytesIn: 0, messagesOut: 0, bytesOut: 0 };
  readonly connects: Counter<'app'>;
  readonly disconnects: Counter<'app' | 'code'>;
  readonly restRequests: Counter<'status'>;
  readonly redisReconnects: Counter;
  readonly redisRoundTrip: Histogram;
  private connectionsSource: () => Map<string, number> = () => new Map();
  /** Frames that reached this node from other nodes through the backbone. */
  backboneReceived: () => number = () => 0;
  private webhookSource?: WebhookStatsSource;

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'ripple_', eventLoopMonitoringPrecision: 20 });
    const hot = this.hot;
    const self = this;
    new Gauge({
      name: 'ripple_connections',
      help: 'Open WebSocket connections on this node, by app',
      labelNames: ['app'],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const [app, n] of self.connectionsSource()) this.set({ app }, n);
      },
    });
    this.connects = new Counter({ name: 'ripple_connects_total', help: 'Accepted WebSocket connections', labelNames: ['app'], registers: [this.registry] });
    this.disconnects = new Counter({
      name: 'ripple_disconnects_total',
      help: 'Closed WebSocket connections by close code (the reason)',
      labelNames: ['app', 'code'],
      registers: [this.registry],
    });
    const hotCounter = (name: string, help: string, read: () => number) =>
      new Counter({
        name,
        help,
        registers: [this.registry],
        collect() {
          this.reset();
          this.inc(read());
        },
      });
    hotCounter('ripple_messages_in_total', 'Frames received from clients', () => hot.messagesIn);
    hotCounter('ripple_bytes_in_total', 'Bytes received from clients', () => hot.bytesIn);
    hotCounter('ripple_messages_out_total', 'Frames sent to clients (channel deliveries)', () => hot.messagesOut);
    hotCounter('ripple_bytes_out_total', 'Bytes sent to clients (channel deliveries)', () => hot.bytesOut);
    hotCounter('ripple_backbone_messages_received_total', 'Frames received from other nodes through Redis', () => self.backboneReceived());
    this.restRequests = new Counter({ name: 'ripple_rest_requests_total', help: 'REST API requests by HTTP status', labelNames: ['status'], registers: [this.registry] });
    const webhookGauge = (name: string, help: string, pick: (s: ReturnType<WebhookStatsSource['stats']>) => number | undefined) =>
      new Gauge({
        name,
        help,
        registers: [this.registry],
        collect() {
          const s = self.webhookSource?.stats();
          this.set(s ? (pick(s) ?? 0) : 0);
        },
      });
    webhookGauge('ripple_webhook_queue_depth', 'Webhook events waiting for delivery', (s) => s.queueDepth);
    webhookGauge('ripple_webhook_delivered', 'Webhook requests delivered since start', (s) => s.delivered);
    webhookGauge('ripple_webhook_retries', 'Webhook delivery retries since start', (s) => s.retries);
    webhookGauge('ripple_webhook_failures', 'Webhook deliveries that failed for good (dead-lettered) since start', (s) => s.failures);
    this.redisReconnects = new Counter({ name: 'ripple_redis_reconnects_total', help: 'Redis reconnections', registers: [this.registry] });
    this.redisRoundTrip = new Histogram({
      name: 'ripple_redis_round_trip_seconds',
      help: 'Redis PING round-trip time',
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5],
      registers: [this.registry],
    });
  }

  setConnectionsSource(fn: () => Map<string, number>): void {
    this.connectionsSource = fn;
  }

  setWebhookSource(src: WebhookStatsSource): void {
    this.webhookSource = src;
  }
}
