// What the frame handlers (subscribe, sign-in, client events) work with; Sessions passes it to them.
import type { Logger } from 'pino';
import type { Channels } from '../channels/channels.js';
import type { ConsoleTap } from '../console/tap.js';
import type { Metrics } from '../metrics/metrics.js';
import type { WebhookSink } from '../webhooks/sink.js';

export interface SessionDeps {
  channels: Channels;
  webhooks: WebhookSink;
  metrics: Metrics;
  log: Logger;
  /** the debug console (issue 21): `if (tap.on && tap.watches(app))` before building anything */
  tap: ConsoleTap;
}
