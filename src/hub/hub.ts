// The node's local view: which local connections are in which channel, and delivery of a pre-built
// frame to them. A channel is a topic of the connections' transports (uWS topics for WebSockets), so
// a broadcast is one publish per transport (style.md: build a frame once, send it many times).
// Subscriptions that opted in to message recovery are in a second topic of the channel, which gets
// recorded events with their position (built once per delivery, docs/recovery.md); while such a
// subscription's replay is being written, its frames are held instead. The hub remembers the last
// position it delivered on each channel: every opted-in subscription in the positioned topic is there,
// which is where a gap in the node's feed starts for them. It also checks, on each recorded delivery,
// that the serial follows that position (a serial parse, nothing for unrecorded frames): a jump means
// the channel's opted-in subscriptions missed events, and its gap listener refills them (ChannelGaps).
// A channel with a single subscription on the node (a channel per user, a channel per connection) has
// no topic: its frames are sent to that connection (a uWS topic with its one subscriber is ~460 bytes of uWS memory; a send
// keeps the socket's order with its topics' frames, as uWS first writes out what they have queued for
// it). The channels are kept by app with the app's traffic counters, so a delivery counts per app
// without another lookup.
import type { Audience, FrameDelivery } from '../backbone/backbone.js';
import type { AppTraffic, TrafficCounters } from '../metrics/metrics.js';
import { withPosition, withPositionBytes } from '../protocol/frames.js';
import type { Connection, ConnectionIndex, Fanout } from './connection.js';

/** Topic of app/channel. Channel names never contain ':' (spec §3.1), so the pair is unambiguous. */
function topicOf(appId: string, channel: string): string {
  return `${appId}:${channel}`;
}

/** Suffix of a channel's topic for opted-in subscriptions: no channel name or user id has a control character. */
const POSITIONED = '\n+';

/** Topic of app/channel's opted-in subscriptions. */
function positionedTopicOf(appId: string, channel: string): string {
  return topicOf(appId, channel) + POSITIONED;
}

/**
 * Told when recorded events of a channel never reached the node's opted-in subscriptions (a serial
 * came after the channel's position with a jump: a lost message, whatever lost it). Called before the
 * frame that revealed it is delivered, so that frame reaches the refilled subscriptions' holds.
 */
export interface ChannelGaps {
  /** `next`: the position that revealed the gap; Hub.position still answers where it starts. */
  channelGap(appId: string, channel: string, next: string): void;
}

const COLON = 58; // ':'

/** The serial of a position from `at` on (its digits; a position comes from the history, trusted). */
function serialAt(position: string, at: number): number {
  let n = 0;
  for (let i = at; i < position.length; i++) n = n * 10 + (position.charCodeAt(i) - 48);
  return n;
}

/** A frame held for a subscription, with its position when it was recorded. */
export interface HeldFrame {
  frame: string;
  position?: string;
}

/** Frames for one subscription, kept while its recovery replay is being written. */
export class Hold {
  frames: HeldFrame[] = [];
  overflowed = false;

  constructor(
    readonly conn: Connection,
    private readonly max: number,
  ) {}

  push(frame: string, position: string | undefined): void {
    if (this.frames.length < this.max) this.frames.push({ frame, position });
    else this.overflowed = true;
  }

  /** Forgets the recorded events held so far (a later history read counts them all); keeps the others. */
  dropRecorded(): void {
    this.frames = this.frames.filter((f) => f.position === undefined);
  }
}

/**
 * What the hub keeps of a channel (see AppChannels.channels): its one plain subscription's connection,
 * not in any topic; or the count of its plain subscriptions, each in the channel's topic; or, with
 * message recovery, a Recovering.
 */
type ChannelState = Connection | number | Recovering;

/** A channel-state value's plain subscriptions. */
function plainOf(v: ChannelState | undefined): number {
  return v === undefined ? 0 : typeof v === 'number' ? v : v instanceof Recovering ? v.plain : 1;
}

/** Its connections on this node, in any topic of the channel or held. */
function totalOf(v: ChannelState | undefined): number {
  return v instanceof Recovering ? v.plain + v.positioned + (v.holds?.size ?? 0) : plainOf(v);
}

/**
 * A channel with message recovery on this node (docs/recovery.md): opted-in subscriptions or recorded
 * events. Its plain subscriptions' count, its positioned topic's, its holds and its position.
 */
class Recovering {
  positioned = 0;
  holds?: Set<Hold> = undefined;
  /** the position the subscriptions in the positioned topic are at (see Hub.position) */
  position?: string = undefined;
  /** `position`'s epoch and serial, split when it is set */
  epoch?: string = undefined;
  serial = 0;

  constructor(public plain: number) {}
}

/**
 * One app's channels on this node, with the app's traffic counters (a delivery counts per app without
 * another lookup). Kept small, as there can be a channel per connection: a channel is its name (the
 * map's key, the string its first subscriber sent) and, without recovery, its one subscription's
 * connection or the count of its subscriptions (no object of its own); its topics are made from the
 * app id and the name when used (a join, a leave, a delivery), not kept.
 */
class AppChannels {
  readonly channels = new Map<string, ChannelState>();

  constructor(readonly traffic: AppTraffic) {}
}

export class Hub implements FrameDelivery {
  /** the local connections by socket id, for leaving out the sender of an event */
  private index: ConnectionIndex = { connection: () => undefined };
  /** appId → its channels with connections on this node */
  private apps = new Map<string, AppChannels>();
  private readonly fanouts: Fanout[] = [];
  private gaps: ChannelGaps = { channelGap() {} };

  constructor(private readonly counters: TrafficCounters) {}

  /** A transport whose connections join topics; called once per transport at start. */
  addFanout(fanout: Fanout): void {
    this.fanouts.push(fanout);
  }

  /** Where the local connections are found by socket id (the sessions); called once at start. */
  useIndex(index: ConnectionIndex): void {
    this.index = index;
  }

  /** Who refills a channel's opted-in subscriptions when recorded events did not reach them; called once at start. */
  useGaps(gaps: ChannelGaps): void {
    this.gaps = gaps;
  }

  private appChannels(appId: string): AppChannels {
    let app = this.apps.get(appId);
    if (!app) this.apps.set(appId, (app = new AppChannels(this.counters.traffic(appId))));
    return app;
  }

  /** The channel's recovery side, made (from its plain subscriptions) when it has none yet. */
  private recovering(appId: string, app: AppChannels, channel: string): Recovering {
    const v = app.channels.get(channel);
    if (v instanceof Recovering) return v;
    const r = new Recovering(v === undefined ? 0 : this.inTopic(appId, channel, v));
    app.channels.set(channel, r);
    return r;
  }

  /** The channel's plain subscriptions, the one without a topic put in it first. */
  private inTopic(appId: string, channel: string, v: Connection | number): number {
    if (typeof v === 'number') return v;
    v.join(topicOf(appId, channel));
    return 1;
  }

  /** true when the channel has no connection here any more (and forgets it) */
  private emptied(appId: string, app: AppChannels, channel: string): boolean {
    if (totalOf(app.channels.get(channel)) > 0) return false;
    app.channels.delete(channel);
    if (app.channels.size === 0) this.apps.delete(appId);
    return true;
  }

  /** Adds a connection to app/channel; true when it is the node's first connection there. */
  join(conn: Connection, appId: string, channel: string, positioned = false): boolean {
    const app = this.appChannels(appId);
    const v = app.channels.get(channel);
    const first = totalOf(v) === 0;
    if (positioned) {
      conn.join(positionedTopicOf(appId, channel));
      this.recovering(appId, app, channel).positioned++;
    } else if (v === undefined) {
      app.channels.set(channel, conn);
    } else {
      conn.join(topicOf(appId, channel));
      if (v instanceof Recovering) v.plain++;
      else app.channels.set(channel, this.inTopic(appId, channel, v) + 1);
    }
    return first;
  }

  /** Removes a connection from app/channel; true when the node has no connection there any more. */
  leave(conn: Connection, appId: string, channel: string, positioned = false): boolean {
    const app = this.apps.get(appId);
    const v = app?.channels.get(channel);
    if (!app || v === undefined) return false;
    if (positioned) {
      if (v instanceof Recovering) {
        conn.leave(positionedTopicOf(appId, channel));
        v.positioned = Math.max(0, v.positioned - 1);
      }
    } else if (v instanceof Recovering) {
      conn.leave(topicOf(appId, channel));
      v.plain = Math.max(0, v.plain - 1);
    } else if (typeof v === 'number') {
      conn.leave(topicOf(appId, channel));
      app.channels.set(channel, Math.max(0, v - 1));
    } else if (v === conn) {
      app.channels.set(channel, 0);
    }
    return this.emptied(appId, app, channel);
  }

  /** Counts an opted-in subscription whose frames are held (at most `max`) until release(); true when first. */
  hold(conn: Connection, appId: string, channel: string, max: number): { hold: Hold; first: boolean } {
    const app = this.appChannels(appId);
    const first = totalOf(app.channels.get(channel)) === 0;
    const hold = new Hold(conn, max);
    const r = this.recovering(appId, app, channel);
    (r.holds ??= new Set()).add(hold);
    return { hold, first };
  }

  /**
   * Moves a connection of the positioned topic into a hold (the node's feed broke: its replay is to
   * be written again); the channel keeps its position.
   */
  rehold(conn: Connection, appId: string, channel: string, max: number): Hold {
    const r = this.recovering(appId, this.appChannels(appId), channel);
    conn.leave(positionedTopicOf(appId, channel));
    r.positioned = Math.max(0, r.positioned - 1);
    const hold = new Hold(conn, max);
    (r.holds ??= new Set()).add(hold);
    return hold;
  }

  /** The channel's recovery side, when it has one. */
  private recoveringOf(appId: string, channel: string): Recovering | undefined {
    const v = this.apps.get(appId)?.channels.get(channel);
    return v instanceof Recovering ? v : undefined;
  }

  /**
   * Ends a hold: the subscription joins the positioned topic; the held frames are the caller's to send.
   * `position`, when given, is where the positioned topic is from now on (the replay went that far).
   */
  release(hold: Hold, appId: string, channel: string, position?: string): void {
    const r = this.recoveringOf(appId, channel);
    if (!r?.holds?.delete(hold)) return;
    if (!r.holds.size) r.holds = undefined;
    // A replay that went past what the channel's other opted-in subscriptions were sent: the events in
    // between were counted by the history read and should have reached the node before it ended
    // (Backbone.caughtUp), so those subscriptions missed them.
    if (position !== undefined) this.moveTo(appId, channel, r, position, 0);
    hold.conn.join(positionedTopicOf(appId, channel));
    r.positioned++;
  }

  /**
   * Sets the channel's position, unless `position` is not after it (then true: every subscription in
   * the positioned topic has that event already). In the same epoch, a serial more than `step` past the
   * channel's is a gap for the subscriptions in the positioned topic, told to the gap listener first.
   * Another epoch is taken as it comes: the history was lost, and the position itself tells the client
   * (docs/recovery.md).
   */
  private moveTo(appId: string, channel: string, r: Recovering, position: string, step: number): boolean {
    const epoch = r.epoch;
    if (epoch !== undefined && position.charCodeAt(epoch.length) === COLON && position.startsWith(epoch)) {
      const serial = serialAt(position, epoch.length + 1);
      if (serial <= r.serial) return true;
      if (serial > r.serial + step && r.positioned > 0) this.gaps.channelGap(appId, channel, position);
      r.serial = serial;
    } else {
      const colon = position.lastIndexOf(':');
      r.epoch = position.slice(0, colon);
      r.serial = serialAt(position, colon + 1);
    }
    r.position = position;
    return false;
  }

  /**
   * The position of the last recorded event the channel's opted-in subscriptions were sent (or a
   * replay reached), undefined when none: with the replays' ordering barrier (Backbone.caughtUp) every
   * subscription in the positioned topic is there.
   */
  position(appId: string, channel: string): string | undefined {
    return this.recoveringOf(appId, channel)?.position;
  }

  /** Channels with subscriptions that did not opt in to recovery, by app (what a break in the feed may cost them). */
  plainChannels(): Map<string, string[]> {
    const byApp = new Map<string, string[]>();
    for (const [appId, app] of this.apps) {
      let list: string[] | undefined;
      for (const [channel, v] of app.channels) {
        if (plainOf(v) === 0) continue;
        if (!list) byApp.set(appId, (list = []));
        list.push(channel);
      }
    }
    return byApp;
  }

  /** Drops a hold (the subscription ended first); true when the node has no connection there any more. */
  cancel(hold: Hold, appId: string, channel: string): boolean {
    const r = this.recoveringOf(appId, channel);
    if (!r?.holds?.delete(hold)) return false;
    if (!r.holds.size) r.holds = undefined;
    return this.emptied(appId, this.apps.get(appId)!, channel);
  }

  /**
   * Sends `frame` to the local connections in app/channel that `audience` names, except
   * `exceptSocketId`; `bytes` is the frame's UTF-8 length when the caller has it already.
   */
  deliver(appId: string, channel: string, frame: string, exceptSocketId?: string, position?: string, bytes?: number, audience: Audience = 'all'): void {
    const app = this.apps.get(appId);
    const v = app?.channels.get(channel);
    if (app === undefined || v === undefined) return;
    const except = exceptSocketId === undefined ? undefined : this.index.connection(appId, exceptSocketId);
    const frameBytes = bytes ?? Buffer.byteLength(frame);
    const traffic = app.traffic;
    if (position === undefined && typeof v === 'object' && !(v instanceof Recovering)) {
      // One plain subscription, in no topic: sent to it (counted as a topic's would be, sender included).
      if (audience === 'positioned') return;
      traffic.messagesOut += 1;
      traffic.bytesOut += frameBytes;
      if (v !== except) v.send(frame);
      return;
    }
    let r = v instanceof Recovering ? v : undefined;
    // A recorded event not after the channel's position (one that came again, or late) is not sent to
    // its opted-in subscriptions: each has it already, or a history read of its own counts it.
    let old = false;
    if (position !== undefined) old = this.moveTo(appId, channel, (r = this.recovering(appId, app, channel)), position, 1);
    const plain = plainOf(r ?? v);
    if (plain > 0 && audience !== 'positioned') {
      traffic.messagesOut += plain;
      traffic.bytesOut += plain * frameBytes;
      const topic = topicOf(appId, channel);
      for (let i = 0; i < this.fanouts.length; i++) this.fanouts[i].publish(topic, frame, except);
    }
    if (r !== undefined && (r.positioned > 0 || r.holds) && audience !== 'plain' && !old) {
      const positioned = position === undefined ? frame : withPosition(frame, position);
      if (r.positioned > 0) {
        traffic.messagesOut += r.positioned;
        traffic.bytesOut += r.positioned * (position === undefined ? frameBytes : withPositionBytes(frameBytes, position));
        const topic = positionedTopicOf(appId, channel);
        for (let i = 0; i < this.fanouts.length; i++) this.fanouts[i].publish(topic, positioned, except);
      }
      if (r.holds) for (const h of r.holds) if (h.conn !== except) h.push(positioned, position);
    }
  }
}
