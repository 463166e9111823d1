// The channel lifecycle's one owner (style.md: centrifuge's Node.addSubscription). For a session
// joining or leaving a channel, this decides everything that follows: local hub membership, backbone
// interest (first/last local connection), the cluster-wide count, channel_occupied/channel_vacated,
// presence member_added/member_removed, subscription_count, and the cache channel's replay or
// cache_miss. Subscribe, unsubscribe, sign-in, connection close (terminate and drain close
// connections) and a dead node's cleanup all come through here, and so do the breaks in the node's
// feed of other nodes' frames and the gaps the hub finds on one channel (the opted-in subscriptions'
// gaps are filled from the history).
import type { Logger } from 'pino';
import type { App } from '../apps/app.js';
import type { AppStore, Found } from '../apps/store.js';
import type { Backbone, FeedHandler, LocalDelivery, Outgoing } from '../backbone/backbone.js';
import type { ChannelCache } from '../cache/channel-cache.js';
import type { ConsoleTap } from '../console/tap.js';
import { parsePosition, policyOf, type ChannelHistory, type HistoryPolicy } from '../history/history.js';
import type { ChannelGaps, Hub } from '../hub/hub.js';
import type { Metrics } from '../metrics/metrics.js';
import type { ClusterEvent, ClusterStateHandler, PresenceMember, PresenceStore } from '../presence/store.js';
import { channelKind, isCacheChannel, ONLINE_CHANNEL, SERVER_TO_USER_PREFIX, watchChannel } from '../protocol/channels.js';
import { Codes } from '../protocol/constants.js';
import * as frames from '../protocol/frames.js';
import type { WebhookEvent, WebhookSink } from '../webhooks/sink.js';
import { subscriptions, Subscription, userIdOf, type ChannelMember, type RecoveryRequest, type Sub } from './member.js';
import { PositionedSubscriptions, type PositionedSubscription } from './positioned.js';
import { HOLD_MARGIN, recover, type RecoveryDeps } from './recovery.js';
import { refuseSubscription, type SubscriptionRefusal } from './refusal.js';
import { SharedReads } from './shared-reads.js';
import { SubscriptionCounts } from './subscription-count.js';

export interface ChannelsDeps {
  apps: AppStore;
  hub: Hub;
  backbone: Backbone;
  store: PresenceStore;
  cache: ChannelCache;
  history: ChannelHistory;
  webhooks: WebhookSink;
  log: Logger;
  /** refused subscriptions are counted by reason; channels a break in the feed may have cost events; gaps found on one channel */
  metrics: Pick<Metrics, 'subscriptionsRefused' | 'unrecoveredChannels' | 'channelGaps'>;
  /** the debug console (issue 21): subscriptions, transitions, cache misses, recovery replays */
  tap: ConsoleTap;
}

type Transition = 'occupied' | 'vacated' | undefined;

export class Channels implements ClusterStateHandler, FeedHandler, ChannelGaps {
  private readonly counts: SubscriptionCounts;
  private readonly recovery: RecoveryDeps;

  constructor(private readonly d: ChannelsDeps) {
    this.counts = new SubscriptionCounts(d.backbone, d.webhooks);
    this.recovery = { hub: d.hub, backbone: d.backbone, reads: new SharedReads(d.history), positioned: new PositionedSubscriptions(), log: d.log, tap: d.tap };
    d.hub.useGaps(this);
  }

  /**
   * Whether these channel events can be published now and are sure to reach every node (false while
   * Redis is down and the outage buffer is full: see Backbone.hasRoom). Checked right before
   * publishEvent by what can be refused (REST 503, client events 4301).
   */
  hasRoom(events: readonly string[]): boolean {
    return this.d.backbone.hasRoom(events);
  }

  /** A channel event (REST trigger, client event): recorded when the channel keeps a history (docs/recovery.md). */
  publishEvent(app: App, channel: string, frame: string, exceptSocketId?: string): void {
    const policy = policyOf(app, channel);
    if (policy) this.d.backbone.publishRecorded(app.id, channel, frame, policy, exceptSocketId);
    else this.d.backbone.publish(app.id, channel, frame, exceptSocketId);
  }

  /**
   * Whether publishAcross() can send these events to the other nodes now (see Backbone.writesNow);
   * includes hasRoom's answer, which it is then (an idle outbox has room).
   */
  writesNow(): boolean {
    return this.d.backbone.writesNow();
  }

  /**
   * Channel events sent to the other nodes now (recorded where the channel keeps a history), the
   * local fan-out left for deliverLocally(): the REST fast path answers in between (Backbone.publishAcross).
   */
  publishAcross(app: App, events: readonly { channel: string; frame: string; socketId?: string }[]): LocalDelivery[] {
    const out: Outgoing[] = [];
    for (const e of events) out.push({ appId: app.id, channel: e.channel, frame: e.frame, policy: policyOf(app, e.channel), exceptSocketId: e.socketId });
    return this.d.backbone.publishAcross(out);
  }

  /** Resolves once what was published so far has been written toward the other nodes (Backbone.written). */
  written(): Promise<void> | undefined {
    return this.d.backbone.written();
  }

  /** The local fan-out publishAcross() left, in order. */
  deliverLocally(deliveries: readonly LocalDelivery[]): void {
    const hub = this.d.hub;
    for (const d of deliveries) hub.deliver(d.appId, d.channel, d.frame, d.exceptSocketId, d.position, d.bytes, d.audience);
  }

  /** Public, private and encrypted channels (spec §3.3, §3.4). */
  subscribe(s: ChannelMember, channel: string, recovery?: RecoveryRequest): void {
    const app = s.app;
    // A plain subscription is its channel's name; one that opted in to recovery is an object.
    const sub: Sub = recovery ? new Subscription(channel) : channel;
    s.subs = subscriptions.with(s.subs, sub);
    const policy = this.joinTopic(s, channel, sub, recovery);
    s.send(frames.subscriptionSucceeded(channel));
    if (this.d.tap.on && this.d.tap.watches(app.id)) this.d.tap.emit({ type: 'subscribed', appId: app.id, socketId: s.socketId, channel, userId: s.user?.id });
    this.afterSucceeded(s, channel, sub, recovery, policy, () => subscriptions.get(s.subs, channel) === sub);
    this.d.store.addSubscription(app.id, channel).then(
      (count) => this.countChanged(app, channel, count, count === 1 ? 'occupied' : undefined),
      // Counted by this node all the same; the cluster gets it, and its webhooks, when its share is written again.
      (err) => this.d.log.debug({ err, app: app.id, channel }, 'subscription not yet counted cluster-wide'),
    );
  }

  /**
   * Presence channels (spec §5): the member limit, the count and the member are one atomic store
   * step, so channel_occupied and member_added of a first socket are due together, on this node, in
   * this order, and a refused join leaves nothing to undo.
   */
  subscribePresence(s: ChannelMember, channel: string, member: PresenceMember, recovery?: RecoveryRequest): void {
    const app = s.app;
    // Recorded before the store answers, so a close in the meantime leaves in order after this join.
    const sub = new Subscription(channel, member.userId);
    s.subs = subscriptions.with(s.subs, sub);
    const policy = this.joinTopic(s, channel, sub, recovery);
    const refuse = (refusal: SubscriptionRefusal) => {
      if (subscriptions.get(s.subs, channel) === sub) {
        s.subs = subscriptions.without(s.subs, channel);
        this.leaveTopic(s, channel, sub);
      }
      refuseSubscription(this.d, s, channel, refusal);
    };
    this.d.store.subscribePresence(app.id, channel, s.socketId, member, app.maxPresenceMembersPerChannel).then(
      (join) => {
        if (join.refused) {
          return refuse({
            reason: 'presence_full',
            type: 'LimitReached',
            error: `The presence channel has reached its limit of ${app.maxPresenceMembersPerChannel} members`,
            status: Codes.overCapacity,
          });
        }
        if (join.count === 1) this.transition(app, { name: 'channel_occupied', channel });
        if (join.added) this.memberAdded(app, channel, member.userId, member.userInfo, s.socketId);
        s.send(frames.presenceSucceeded(channel, join.members));
        if (this.d.tap.on && this.d.tap.watches(app.id)) this.d.tap.emit({ type: 'subscribed', appId: app.id, socketId: s.socketId, channel, userId: member.userId });
        // Events are replayed, not member changes: the member list above replaces them.
        this.afterSucceeded(s, channel, sub, recovery, policy, () => subscriptions.get(s.subs, channel) === sub);
      },
      (err) => {
        this.d.log.warn({ err, app: app.id, channel }, 'presence join failed');
        refuse({ reason: 'presence_unavailable', type: 'ServerError', error: 'Presence state is unavailable, try again', status: Codes.serverError });
      },
    );
  }

  /**
   * `#server-to-user-<id>` (spec §4.7): its topic was joined at sign-in; the subscribe confirms, and a
   * recovering one moves the session to the positioned topic through a hold.
   */
  subscribeUser(s: ChannelMember, channel: string, recovery?: RecoveryRequest): void {
    const sub = s.userChannel;
    let policy: HistoryPolicy | undefined;
    if (sub && recovery && !sub.positioned && !sub.hold && (policy = policyOf(s.app, channel))) {
      this.d.hub.leave(s.conn, s.app.id, channel);
      sub.hold = this.d.hub.hold(s.conn, s.app.id, channel, policy.size + HOLD_MARGIN).hold;
    }
    s.send(frames.subscriptionSucceeded(channel));
    if (this.d.tap.on && this.d.tap.watches(s.app.id)) this.d.tap.emit({ type: 'subscribed', appId: s.app.id, socketId: s.socketId, channel, userId: s.user?.id });
    if (sub) this.afterSucceeded(s, channel, sub, recovery, policy, () => s.userChannel === sub);
  }

  /** A repeated subscribe (spec §3.6): confirmed again, no side effects. */
  confirmAgain(s: ChannelMember, channel: string): void {
    if (channelKind(channel) !== 'presence') return s.send(frames.subscriptionSucceeded(channel));
    this.d.store.members(s.app.id, channel).then(
      (m) => s.send(frames.presenceSucceeded(channel, m)),
      () => s.send(frames.subscriptionSucceeded(channel)),
    );
  }

  unsubscribe(s: ChannelMember, channel: string): void {
    const sub = subscriptions.get(s.subs, channel);
    if (!sub) return; // unknown unsubscribe: ignored (spec §3.6)
    s.subs = subscriptions.without(s.subs, channel);
    this.leaveTopic(s, channel, sub);
    if (this.d.tap.on && this.d.tap.watches(s.app.id)) this.d.tap.emit({ type: 'unsubscribed', appId: s.app.id, socketId: s.socketId, channel, userId: userIdOf(sub) });
    // Unrecorded (Redis unreachable): this node's record has it, and when Redis is back its share is
    // written again and the transitions it makes are announced then (presence/redis.ts).
    this.leaveStore(s.app, channel, s.socketId, userIdOf(sub)).catch((err) => this.d.log.debug({ err, app: s.app.id, channel }, 'leave not yet recorded cluster-wide'));
  }

  /**
   * A session just signed in as s.user (spec §4.6): it receives its user's events at once, follows its
   * watchlist, and the user is online while signed in anywhere in the cluster.
   */
  signIn(s: ChannelMember, userInfo: unknown): void {
    const user = s.user!;
    const app = s.app;
    s.userChannel = new Subscription(SERVER_TO_USER_PREFIX + user.id);
    this.joinTopic(s, s.userChannel.channel, s.userChannel);
    for (const watched of user.watchlist) this.joinTopic(s, watchChannel(watched), watchChannel(watched));
    this.d.store.joinPresence(app.id, ONLINE_CHANNEL, s.socketId, { userId: user.id, userInfo }).then(
      (join) => {
        if (join.added) this.announce(app.id, user.id, 'online');
        if (user.watchlist.length === 0) return;
        // The current state of the watchlist first, then changes (spec §4.8).
        const online = user.watchlist.filter((u) => join.members.has(u));
        const offline = user.watchlist.filter((u) => !join.members.has(u));
        const events: { name: 'online' | 'offline'; user_ids: string[] }[] = [];
        if (online.length) events.push({ name: 'online', user_ids: online });
        if (offline.length) events.push({ name: 'offline', user_ids: offline });
        s.send(frames.watchlistEvents(events));
      },
      (err) => this.d.log.warn({ err, app: app.id }, 'online state not recorded'),
    );
  }

  /** The session's connection closed: it leaves every channel, and its user goes offline if it was the last. */
  leaveAll(s: ChannelMember): void {
    for (const channel of subscriptions.names(s.subs)) this.unsubscribe(s, channel);
    const user = s.user;
    if (!user) return;
    const app = s.app;
    if (s.userChannel) this.leaveTopic(s, s.userChannel.channel, s.userChannel);
    s.userChannel = undefined;
    for (const watched of user.watchlist) this.leaveTopic(s, watchChannel(watched), watchChannel(watched));
    this.d.store.leavePresence(app.id, ONLINE_CHANNEL, s.socketId, user.id).then(
      (last) => {
        if (last) this.announce(app.id, user.id, 'offline');
      },
      (err) => this.d.log.warn({ err, app: app.id }, 'offline state not recorded'),
    );
  }

  /**
   * A node's share of the cluster state changed as a whole: removed (its crash, or its graceful stop)
   * or written again after Redis could not be told (this node's own). What that made due is sent as a
   * single join or leave would.
   */
  stateChanged(events: ClusterEvent[]): void {
    const lookups = events.map((e) => this.d.apps.findById(e.appId));
    // An app the store must ask its source for: the events wait for every answer, and keep their order.
    if (lookups.some((l) => l instanceof Promise)) {
      Promise.all(lookups).then(
        (apps) => this.applyStateChanges(events, apps),
        (err) => this.d.log.warn({ err }, 'cluster state changes not sent: apps cannot be looked up'),
      );
    } else this.applyStateChanges(events, lookups as Found[]);
  }

  private applyStateChanges(events: ClusterEvent[], apps: Found[]): void {
    for (const [i, e] of events.entries()) {
      const app = apps[i];
      if (!app) continue;
      if (e.kind === 'member_added') {
        if (e.channel === ONLINE_CHANNEL) this.announce(e.appId, e.userId, 'online');
        else this.memberAdded(app, e.channel, e.userId, e.userInfo);
      } else if (e.kind === 'member_removed') {
        if (e.channel === ONLINE_CHANNEL) this.announce(e.appId, e.userId, 'offline');
        else this.memberRemoved(app, e.channel, e.userId);
      } else {
        this.countChanged(app, e.channel, e.count, e.count === 0 ? 'vacated' : undefined);
      }
    }
  }

  /**
   * The node's feed broke: what other nodes publish until it is back never arrives, their recorded
   * events included. Every positioned subscription is held again and, once the feed is back, gets what
   * it missed from the history, or an outcome saying it cannot (docs/recovery.md).
   */
  feedBroken(): void {
    const positioned = this.recovery.positioned.takeAll();
    for (const [sub, p] of positioned) this.refill(sub, p);
    if (positioned.length) this.d.log.info({ subscriptions: positioned.length }, 'the node stopped receiving other nodes\' events: opted-in subscriptions held until the history fills their gap');
  }

  /**
   * The hub found a gap in one channel's recorded events (a serial after a jump, or a replay that went
   * past them: a message lost on its way to this node, e.g. during a Redis Cluster slot migration):
   * that channel's positioned subscriptions are held again and refilled as after a break in the feed.
   */
  channelGap(appId: string, channel: string, next: string): void {
    const positioned = this.recovery.positioned.take(appId, channel);
    if (!positioned.length) return;
    const from = this.d.hub.position(appId, channel);
    for (const [sub, p] of positioned) this.refill(sub, p);
    this.d.metrics.channelGaps.inc({ app: appId });
    this.d.log.info({ app: appId, channel, from, next, subscriptions: positioned.length }, 'recorded events of a channel did not reach the node: its opted-in subscriptions are refilled from the history');
  }

  /** A positioned subscription held again and sent what it missed from the history, or told it cannot be. */
  private refill(sub: Subscription, { s, channel, current }: PositionedSubscription): void {
    const app = s.app;
    const policy = policyOf(app, channel);
    if (!policy || !sub.positioned || !current()) return;
    const at = this.d.hub.position(app.id, channel);
    // Positioned without a position, and no event sent to it since: where it is, nobody knows.
    const unknown = sub.unknownSince !== undefined && sub.unknownSince.position === at;
    sub.positioned = false;
    sub.unknownSince = undefined;
    sub.hold = this.d.hub.rehold(s.conn, app.id, channel, policy.size + HOLD_MARGIN);
    void recover(this.recovery, s, channel, sub, { position: unknown ? undefined : parsePosition(at), socketIds: [s.socketId] }, policy, current, 'refill');
  }

  /**
   * The feed is back. Subscriptions without recovery may have missed what other nodes published in
   * between, and nothing can tell them: each such channel is counted and the break is logged once, as
   * a warning when only the feed broke. When Redis itself was away, the outage log has warned already,
   * and other nodes kept what they published meanwhile for when it returned (backbone outbox).
   */
  feedResumed(redisWasDown: boolean): void {
    let count = 0;
    const sample: string[] = [];
    for (const [appId, channels] of this.d.hub.plainChannels()) {
      this.d.metrics.unrecoveredChannels.inc({ app: appId }, channels.length);
      count += channels.length;
      for (const channel of channels) if (sample.length < 10) sample.push(`${appId}/${channel}`);
    }
    if (!count) return;
    if (redisWasDown) this.d.log.info({ channels: count, sample }, 'the node receives other nodes\' events again after the Redis outage: what reached Redis meanwhile did not reach its subscriptions without message recovery');
    else this.d.log.warn({ channels: count, sample }, 'the node receives other nodes\' events again: those published meanwhile did not reach its subscriptions without message recovery');
  }

  close(): void {
    this.counts.close();
  }

  /**
   * Joins the hub and, for the node's first local connection, registers interest with the backbone. A
   * subscribe that opted in to recovery on a channel with a history is held until its replay is
   * written (a recovering subscription is an object: see Sub); returns that channel's policy then.
   */
  private joinTopic(s: ChannelMember, channel: string, sub: Sub, recovery?: RecoveryRequest): HistoryPolicy | undefined {
    const policy = recovery && typeof sub === 'object' ? policyOf(s.app, channel) : undefined;
    let first: boolean;
    if (policy && typeof sub === 'object') ({ hold: sub.hold, first } = this.d.hub.hold(s.conn, s.app.id, channel, policy.size + HOLD_MARGIN));
    else first = this.d.hub.join(s.conn, s.app.id, channel);
    if (first) this.d.backbone.addInterest(s.app.id, channel);
    return policy;
  }

  private leaveTopic(s: ChannelMember, channel: string, sub: Sub): void {
    let last: boolean;
    if (typeof sub === 'string') {
      last = this.d.hub.leave(s.conn, s.app.id, channel);
    } else if (sub.hold) {
      last = this.d.hub.cancel(sub.hold, s.app.id, channel);
      sub.hold = undefined;
    } else {
      last = this.d.hub.leave(s.conn, s.app.id, channel, sub.positioned);
      this.recovery.positioned.delete(s.app.id, sub);
    }
    if (last) this.d.backbone.removeInterest(s.app.id, channel);
  }

  /**
   * What follows subscription_succeeded: for a recovering subscribe, the replay and its outcome
   * (docs/recovery.md); then the cache channel's replay, unless the gap was recovered (spec §7).
   */
  private afterSucceeded(
    s: ChannelMember,
    channel: string,
    sub: Sub,
    recovery: RecoveryRequest | undefined,
    policy: HistoryPolicy | undefined,
    current: () => boolean,
  ): void {
    if (recovery && policy && typeof sub === 'object') {
      void recover(this.recovery, s, channel, sub, recovery, policy, current).then((recovered) => {
        if (!recovered && isCacheChannel(channel) && current()) this.replayCache(s, channel);
      });
      return;
    }
    if (recovery) s.send(frames.recoveryOutcome(channel, { position: null, ...(recovery.position ? { recovered: false } : {}), reason: 'disabled' }));
    if (isCacheChannel(channel)) this.replayCache(s, channel);
  }

  private async leaveStore(app: App, channel: string, socketId: string, userId: string | undefined): Promise<void> {
    if (userId === undefined) {
      const count = await this.d.store.removeSubscription(app.id, channel);
      return this.countChanged(app, channel, count, count === 0 ? 'vacated' : undefined);
    }
    const { held, last, count } = await this.d.store.unsubscribePresence(app.id, channel, socketId, userId);
    if (!held) return; // its join was refused: nothing was announced, nothing is due
    // member_removed before channel_vacated (spec §12.17).
    if (last) this.memberRemoved(app, channel, userId);
    this.countChanged(app, channel, count, count === 0 ? 'vacated' : undefined);
  }

  /** `exceptSocketId`: the joining socket, which gets the member list instead */
  private memberAdded(app: App, channel: string, userId: string, userInfo: unknown, exceptSocketId?: string): void {
    this.d.backbone.publish(app.id, channel, frames.memberAdded(channel, userId, userInfo), exceptSocketId);
    this.transition(app, { name: 'member_added', channel, user_id: userId });
  }

  private memberRemoved(app: App, channel: string, userId: string): void {
    this.d.backbone.publish(app.id, channel, frames.memberRemoved(channel, userId));
    this.transition(app, { name: 'member_removed', channel, user_id: userId });
  }

  /** Webhooks and subscription_count broadcasts after a channel's cluster-wide count changed. */
  private countChanged(app: App, channel: string, count: number, transition: Transition): void {
    if (transition === 'occupied') this.transition(app, { name: 'channel_occupied', channel });
    if (app.enableSubscriptionCount && channelKind(channel) !== 'presence') this.counts.changed(app, channel, count);
    if (transition === 'vacated') this.transition(app, { name: 'channel_vacated', channel });
  }

  /**
   * The webhook of an occupied/vacated/added/removed transition, unless the store queued it itself in
   * the step that made the transition (Redis: so the queue's order is the transitions' order, whichever
   * node made them, spec §10.3 and README "Webhooks").
   */
  private transition(app: App, event: WebhookEvent): void {
    if (!this.d.store.queuesTransitionWebhooks) this.d.webhooks.emit(app, event);
    if (this.d.tap.on && this.d.tap.watches(app.id)) {
      const e = event as { name: 'channel_occupied' | 'channel_vacated' | 'member_added' | 'member_removed'; channel: string; user_id?: string };
      this.d.tap.emit({ type: e.name, appId: app.id, channel: e.channel, userId: e.user_id });
    }
  }

  /** Right after subscription_succeeded: the cached event, or pusher:cache_miss and, once per window, its webhook (spec §7). */
  private replayCache(s: ChannelMember, channel: string): void {
    const app = s.app;
    this.d.cache
      .get(app.id, channel)
      .then(async (hit) => {
        if (hit) return s.send(frames.channelEvent(hit.ev.event, channel, hit.ev.data));
        s.send(frames.cacheMiss(channel));
        if (this.d.tap.on && this.d.tap.watches(app.id)) this.d.tap.emit({ type: 'cache_miss', appId: app.id, socketId: s.socketId, channel });
        // Each subscriber hears of the miss; the app's server once per window (spec §7).
        if (await this.d.cache.firstMiss(app.id, channel)) this.d.webhooks.emit(app, { name: 'cache_miss', channel });
      })
      .catch((err) => this.d.log.warn({ err, app: app.id, channel }, 'cache lookup failed'));
  }

  /** A user's change of online state, to the sessions watching them on every node (spec §4.8). */
  private announce(appId: string, userId: string, name: 'online' | 'offline'): void {
    this.d.backbone.publish(appId, watchChannel(userId), frames.watchlistEvents([{ name, user_ids: [userId] }]));
  }
}
