// Which endpoint queues an event goes to: each endpoint's event types and channel filter, in one
// place for the delivery (WebhookDelivery.emit) and for the presence store, which queues the webhooks
// of the transitions it makes inside its own atomic steps. The routes follow the app store: an app
// added or changed at run time has its transitions queued from its next one on.
import type { App } from '../apps/app.js';
import type { AppStore } from '../apps/store.js';
import type { AppConfig } from '../config/schema.js';
import type { TransitionRouter, TransitionRoutes } from '../presence/store.js';
import { queueName } from './queue.js';

export interface EndpointFilter {
  queue: string;
  types: ReadonlySet<string>;
  startsWith?: string;
  endsWith?: string;
}

export function endpointFilters(app: Pick<AppConfig, 'id' | 'webhooks'>): EndpointFilter[] {
  return app.webhooks.map((w) => ({
    queue: queueName(app.id, w.url),
    types: new Set<string>(w.event_types),
    startsWith: w.filter.channel_name_starts_with,
    endsWith: w.filter.channel_name_ends_with,
  }));
}

/** Whether the endpoint wants this event on this channel. */
export function wants(ep: EndpointFilter, name: string, channel: string): boolean {
  if (!ep.types.has(name)) return false;
  if (ep.startsWith !== undefined && !channel.startsWith(ep.startsWith)) return false;
  return ep.endsWith === undefined || channel.endsWith(ep.endsWith);
}

const TRANSITIONS = { occupied: 'channel_occupied', vacated: 'channel_vacated', added: 'member_added', removed: 'member_removed' } as const;

export class WebhookRoutes implements TransitionRouter {
  private readonly byApp = new Map<string, EndpointFilter[]>();

  constructor(apps: AppStore) {
    for (const app of apps.all()) this.set(app);
    apps.onChange((change) => {
      if (change.kind === 'removed') this.byApp.delete(change.previous.id);
      else this.set(change.app);
    });
  }

  get any(): boolean {
    return this.byApp.size > 0;
  }

  private set(app: App): void {
    const eps = endpointFilters(app).filter((ep) => Object.values(TRANSITIONS).some((t) => ep.types.has(t)));
    if (eps.length) this.byApp.set(app.id, eps);
    else this.byApp.delete(app.id);
  }

  routes(appId: string, channel: string): TransitionRoutes | undefined {
    const eps = this.byApp.get(appId);
    if (!eps) return undefined;
    const pick = (name: string) => eps.filter((ep) => wants(ep, name, channel)).map((ep) => ep.queue);
    const r = { occupied: pick(TRANSITIONS.occupied), vacated: pick(TRANSITIONS.vacated), added: pick(TRANSITIONS.added), removed: pick(TRANSITIONS.removed) };
    return r.occupied.length || r.vacated.length || r.added.length || r.removed.length ? r : undefined;
  }
}
