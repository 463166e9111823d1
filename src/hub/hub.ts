// The node's local view: which local connections are in which channel, and delivery of a pre-built
// frame to them. A channel is a topic of the connections' transports (uWS topics for WebSockets), so
// a broadcast is one publish per transport (style.md: build a frame once, send it many times).
// Subscriptions that opted in to message recovery are in a second topic of the channel, which gets
// recorded events with their position (built once per delivery, docs/recovery.md); while such a
// subscription's replay is being written, its frames are held instead. The hub remembers the last
// position it delivered on each channel: every opted-in subscription in the positioned topic is there,
// which is where a gap in the node's feed starts for them. Each channel's state keeps its app's
// traffic counters, so a delivery counts per app without a lookup.
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
 * One channel's connections on this node. Kept small, as there can be one per connection: its topic
 * (`app:channel`, which the hub's map is keyed by too), the count of plain subscriptions, the app's
 * traffic counters, and only for a channel with opted-in subscriptions or recorded events, `rec`.
 */
class ChannelState {
  rec?: Recovering = undefined;

  constructor(
    readonly topic: string,
    readonly traffic: AppTraffic,
    public plain = 0,
  ) {}

  get appId(): string {
    return this.topic.slice(0, this.topic.lastIndexOf(':'));
  }

  get channel(): string {
    return this.topic.slice(this.topic.lastIndexOf(':') + 1);
  }

  total(): number {
    const r = this.rec;
    return r === undefined ? this.plain : this.plain + r.positioned + (r.holds?.size ?? 0);
  }
}

/** A channel's message-recovery side (docs/recovery.md): its positioned topic, holds and position. */
class Recovering {
  /** the topic of the channel's opted-in subscriptions */
  readonly topic: string;
  positioned = 0;
  holds?: Set<Hold> = undefined;
  /** the position the subscriptions in the positioned topic are at (see Hub.position) */
  position?: string = undefined;

  constructor(channelTopic: string) {
    this.topic = channelTopic + POSITIONED;
  }
}

export class Hub implements FrameDelivery {
  /** the local connections by socket id, for leaving out the sender of an event */
  private index: ConnectionIndex = { connection: () => undefined };
  /** topic → this node's connections in the channel */
  private channels = new Map<string, ChannelState>();
  private readonly fanouts: Fanout[] = [];

  constructor(private readonly counters: TrafficCounters) {}

  /** A transport whose connections join topics; called once per transport at start. */
  addFanout(fanout: Fanout): void {
    this.fanouts.push(fanout);
  }

  /** Where the local connections are found by socket id (the sessions); called once at start. */
  useIndex(index: ConnectionIndex): void {
    this.index = index;
  }

  private state(appId: string, channel: string): ChannelState {
    const topic = topicOf(appId, channel);
    let st = this.channels.get(topic);
    if (!st) this.channels.set(topic, (st = new ChannelState(topic, this.counters.traffic(appId))));
    return st;
  }

  private recovering(st: ChannelState): Recovering {
    return (st.rec ??= new Recovering(st.topic));
  }

  /** true when the channel has no connection here any more (and forgets it) */
  private emptied(st: ChannelState): boolean {
    if (st.total() > 0) return false;
    this.channels.delete(st.topic);
    return true;
  }

  /** Adds a connection to app/channel; true when it is the node's first connection there. */
  join(conn: Connection, appId: string, channel: string, positioned = false): boolean {
    const st = this.state(appId, channel);
    const first = st.total() === 0;
    if (positioned) {
      const r = this.recovering(st);
      conn.join(r.topic);
      r.positioned++;
    } else {
      conn.join(st.topic);
      st.plain++;
    }
    return first;
  }

  /** Removes a connection from app/channel; true when the node has no connection there any more. */
  leave(conn: Connection, appId: string, channel: string, positioned = false): boolean {
    const st = this.channels.get(topicOf(appId, channel));
    if (!st) return false;
    if (positioned) {
      if (st.rec) {
        conn.leave(st.rec.topic);
        st.rec.positioned = Math.max(0, st.rec.positioned - 1);
      }
    } else {
      conn.leave(st.topic);
      st.plain = Math.max(0, st.plain - 1);
    }
    return this.emptied(st);
  }

  /** Counts an opted-in subscription whose frames are held (at most `max`) until release(); true when first. */
  hold(conn: Connection, appId: string, channel: string, max: number): { hold: Hold; first: boolean } {
    const st = this.state(appId, channel);
    const first = st.total() === 0;
    const hold = new Hold(conn, max);
    const r = this.recovering(st);
    (r.holds ??= new Set()).add(hold);
    return { hold, first };
  }

  /**
   * Moves a connection of the positioned topic into a hold (the node's feed broke: its replay is to
   * be written again); the channel keeps its position.
   */
  rehold(conn: Connection, appId: string, channel: string, max: number): Hold {
    const r = this.recovering(this.state(appId, channel));
    conn.leave(r.topic);
    r.positioned = Math.max(0, r.positioned - 1);
    const hold = new Hold(conn, max);
    (r.holds ??= new Set()).add(hold);
    return hold;
  }

  /**
   * Ends a hold: the subscription joins the positioned topic; the held frames are the caller's to send.
   * `position`, when given, is where the positioned topic is from now on (the replay went that far).
   */
  release(hold: Hold, appId: string, channel: string, position?: string): void {
    const r = this.channels.get(topicOf(appId, channel))?.rec;
    if (!r?.holds?.delete(hold)) return;
    if (!r.holds.size) r.holds = undefined;
    hold.conn.join(r.topic);
    r.positioned++;
    if (position !== undefined) r.position = position;
  }

  /**
   * The position of the last recorded event the channel's opted-in subscriptions were sent (or a
   * replay reached), undefined when none: with the replays' ordering barrier (Backbone.caughtUp) every
   * subscription in the positioned topic is there.
   */
  position(appId: string, channel: string): string | undefined {
    return this.channels.get(topicOf(appId, channel))?.rec?.position;
  }

  /** Channels with subscriptions that did not opt in to recovery, by app (what a break in the feed may cost them). */
  plainChannels(): Map<string, string[]> {
    const byApp = new Map<string, string[]>();
    for (const st of this.channels.values()) {
      if (st.plain === 0) continue;
      let list = byApp.get(st.appId);
      if (!list) byApp.set(st.appId, (list = []));
      list.push(st.channel);
    }
    return byApp;
  }

  /** Drops a hold (the subscription ended first); true when the node has no connection there any more. */
  cancel(hold: Hold, appId: string, channel: string): boolean {
    const st = this.channels.get(topicOf(appId, channel));
    const r = st?.rec;
    if (!r?.holds?.delete(hold)) return false;
    if (!r.holds.size) r.holds = undefined;
    return this.emptied(st!);
  }

  /**
   * Sends `frame` to the local connections in app/channel that `audience` names, except
   * `exceptSocketId`; `bytes` is the frame's UTF-8 length when the caller has it already.
   */
  deliver(appId: string, channel: string, frame: string, exceptSocketId?: string, position?: string, bytes?: number, audience: Audience = 'all'): void {
    const st = this.channels.get(topicOf(appId, channel));
    if (st === undefined) return;
    const except = exceptSocketId === undefined ? undefined : this.index.connection(appId, exceptSocketId);
    const frameBytes = bytes ?? Buffer.byteLength(frame);
    if (position !== undefined) this.recovering(st).position = position;
    if (st.plain > 0 && audience !== 'positioned') {
      st.traffic.messagesOut += st.plain;
      st.traffic.bytesOut += st.plain * frameBytes;
      for (let i = 0; i < this.fanouts.length; i++) this.fanouts[i].publish(st.topic, frame, except);
    }
    const r = st.rec;
    if (r !== undefined && (r.positioned > 0 || r.holds) && audience !== 'plain') {
      const positioned = position === undefined ? frame : withPosition(frame, position);
      if (r.positioned > 0) {
        st.traffic.messagesOut += r.positioned;
        st.traffic.bytesOut += r.positioned * (position === undefined ? frameBytes : withPositionBytes(frameBytes, position));
        for (let i = 0; i < this.fanouts.length; i++) this.fanouts[i].publish(r.topic, positioned, except);
      }
      if (r.holds) for (const h of r.holds) if (h.conn !== except) h.push(positioned, position);
    }
  }
}
