// The gateway and the API hand webhook-worthy state changes to a WebhookSink as plain records
// (spec §10.3 bodies); batching, signing, delivery and retries live behind it.
import type { App } from '../apps/app.js';

export type WebhookEvent =
  | { name: 'channel_occupied'; channel: string }
  | { name: 'channel_vacated'; channel: string }
  | { name: 'member_added'; channel: string; user_id: string }
  | { name: 'member_removed'; channel: string; user_id: string }
  | { name: 'client_event'; channel: string; event: string; data: unknown; socket_id: string; user_id?: string }
  | { name: 'cache_miss'; channel: string }
  | { name: 'subscription_count'; channel: string; subscription_count: number };

export interface WebhookSink {
  /** Queues an event for the app's matching webhooks; never blocks and never throws. */
  emit(app: App, event: WebhookEvent): void;
}
