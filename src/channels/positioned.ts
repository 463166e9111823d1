// The node's opted-in subscriptions that are in their channels' positioned topics, by channel: a break
// in the node's feed sends all of them back to the history, a gap on one channel only that channel's
// (docs/recovery.md).
import type { ChannelMember, Subscription } from './member.js';

/** An opted-in subscription in its channel's positioned topic, as a refill finds it. */
export interface PositionedSubscription {
  s: ChannelMember;
  channel: string;
  current: () => boolean;
}

/** app/channel, as the hub's topics name it (channel names never contain ':', spec §3.1). */
function keyOf(appId: string, channel: string): string {
  return `${appId}:${channel}`;
}

export class PositionedSubscriptions {
  private readonly byChannel = new Map<string, Map<Subscription, PositionedSubscription>>();

  add(sub: Subscription, p: PositionedSubscription): void {
    const key = keyOf(p.s.app.id, p.channel);
    let subs = this.byChannel.get(key);
    if (!subs) this.byChannel.set(key, (subs = new Map()));
    subs.set(sub, p);
  }

  delete(appId: string, sub: Subscription): void {
    const key = keyOf(appId, sub.channel);
    const subs = this.byChannel.get(key);
    if (subs?.delete(sub) && subs.size === 0) this.byChannel.delete(key);
  }

  /** Removes one channel's and returns them. */
  take(appId: string, channel: string): [Subscription, PositionedSubscription][] {
    const key = keyOf(appId, channel);
    const subs = this.byChannel.get(key);
    if (!subs) return [];
    this.byChannel.delete(key);
    return [...subs];
  }

  /** Removes every channel's and returns them. */
  takeAll(): [Subscription, PositionedSubscription][] {
    const all: [Subscription, PositionedSubscription][] = [];
    for (const subs of this.byChannel.values()) for (const e of subs) all.push(e);
    this.byChannel.clear();
    return all;
  }
}
