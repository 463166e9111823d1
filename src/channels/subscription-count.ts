// pusher_internal:subscription_count (spec §8): sent to a channel's subscribers when its cluster-wide
// count changes, at most once every 5 s for channels above 100 subscribers.
import type { App } from '../apps/app.js';
import type { Backbone } from '../backbone/backbone.js';
import * as frames from '../protocol/frames.js';
import type { WebhookSink } from '../webhooks/sink.js';

const THROTTLE_ABOVE = 100;
const THROTTLE_MS = 5000;

interface State {
  lastSent: number;
  pending?: { timer: NodeJS.Timeout; count: number };
}

export class SubscriptionCounts {
  private states = new Map<string, State>();

  constructor(
    private readonly backbone: Backbone,
    private readonly webhooks: WebhookSink,
  ) {}

  changed(app: App, channel: string, count: number): void {
    const key = `${app.id}:${channel}`;
    const now = Date.now();
    let st = this.states.get(key);
    if (!st) this.states.set(key, (st = { lastSent: 0 }));
    if (st.pending) {
      st.pending.count = count;
      return;
    }
    if (count <= THROTTLE_ABOVE || now - st.lastSent >= THROTTLE_MS) {
      this.send(app, channel, count, st, now);
      return;
    }
    const state = st;
    state.pending = {
      count,
      timer: setTimeout(() => {
        const latest = state.pending!.count;
        state.pending = undefined;
        this.send(app, channel, latest, state, Date.now());
      }, state.lastSent + THROTTLE_MS - now),
    };
    state.pending.timer.unref();
  }

  private send(app: App, channel: string, count: number, st: State, now: number): void {
    st.lastSent = now;
    if (count === 0) {
      // Nobody is left to tell; forget the channel.
      this.states.delete(`${app.id}:${channel}`);
    } else {
      this.backbone.publish(app.id, channel, frames.subscriptionCount(channel, count));
    }
    this.webhooks.emit(app, { name: 'subscription_count', channel, subscription_count: count });
  }

  close(): void {
    for (const st of this.states.values()) if (st.pending) clearTimeout(st.pending.timer);
    this.states.clear();
  }
}
