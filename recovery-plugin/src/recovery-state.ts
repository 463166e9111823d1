// What a client knows for recovery: the last position seen on each channel it subscribed through the
// plugin (or that it does not know where it is), and its earlier socket ids. It reads the server's raw
// frames and tells the glue which ones the app must not see (duplicates) and when continuity was lost.
import { MAX_EARLIER_SOCKET_IDS, OUTCOME_EVENT, POSITION_FIELD } from './protocol.js';
import { alreadySeen, formatPosition, parsePosition, type Position } from './position.js';
import type { RecoveryStore } from './storage.js';

/** The `ripple_recovery` field of a subscribe. */
export interface RecoveryRequest {
  position?: string;
  socket_ids?: string[];
}

/** What one raw frame means for the app, for a frame of a tracked channel. */
export type FrameVerdict = { channel: string; event: string } & ({ duplicate: true } | { continuityLost: string });

interface Outcome {
  position?: unknown;
  recovered?: unknown;
  reason?: unknown;
}

/** Why the plugin itself reports continuity lost: the channel was subscribed before withRecovery() saw it. */
const UNTRACKED = 'untracked';

export class RecoveryState {
  /** Channels subscribed through the plugin; the value is the last position seen (undefined: none yet). */
  private readonly channels = new Map<string, Position | undefined>();
  /**
   * Channels that may have missed events without a position to recover them from: the server could
   * not tell where the channel was (`unavailable`), or they were subscribed before the plugin saw them.
   * The value is the reason their next outcome reports continuity lost, unless it says recovered.
   */
  private readonly unknown = new Map<string, string>();
  /** Socket ids of this client's earlier connections, the most recent first. */
  private earlier: string[];
  private current: string | undefined;

  constructor(private readonly store: RecoveryStore) {
    this.earlier = store.socketIds().slice(0, MAX_EARLIER_SOCKET_IDS);
  }

  /** A connection was established (the first, or a reconnect with a new socket id). */
  connected(socketId: string): void {
    if (this.current !== undefined) this.earlier = [this.current, ...this.earlier].slice(0, MAX_EARLIER_SOCKET_IDS);
    this.current = socketId;
    // For a reload of the page, this connection is an earlier one too.
    this.store.saveSocketIds([socketId, ...this.earlier].slice(0, MAX_EARLIER_SOCKET_IDS));
  }

  /** The opt-in for a subscribe being sent: the last position, if any, and the earlier socket ids with it. */
  request(channel: string): RecoveryRequest {
    if (!this.channels.has(channel)) this.channels.set(channel, this.store.position(channel));
    const last = this.channels.get(channel);
    if (!last) return {};
    // Events the client excluded itself from under an earlier socket id (Echo's toOthers()) must
    // not be replayed to it: only the server knows which, from these ids.
    return this.earlier.length ? { position: formatPosition(last), socket_ids: this.earlier } : { position: formatPosition(last) };
  }

  /**
   * A channel subscribed before withRecovery() wrapped the instance: events it missed before its first
   * outcome cannot be known, so that outcome reports continuity lost.
   */
  untracked(channel: string): void {
    this.channels.set(channel, undefined);
    this.unknown.set(channel, UNTRACKED);
    this.store.savePosition(channel, undefined);
  }

  /** The app unsubscribed: a later subscribe to the channel starts afresh. */
  forget(channel: string): void {
    this.channels.delete(channel);
    this.unknown.delete(channel);
    this.store.savePosition(channel, undefined);
  }

  /** Reads one raw frame from the server; a verdict when the app must not see it or must hear more. */
  read(text: unknown): FrameVerdict | undefined {
    // Only the frames of opted-in subscriptions name ripple_position or ripple_recovery: every other
    // frame is passed over without being parsed a second time.
    if (typeof text !== 'string' || !text.includes('ripple_')) return undefined;
    let frame: { event?: unknown; channel?: unknown; data?: unknown; [POSITION_FIELD]?: unknown };
    try {
      frame = JSON.parse(text);
    } catch {
      return undefined;
    }
    const { channel, event } = frame;
    if (typeof channel !== 'string' || typeof event !== 'string' || !this.channels.has(channel)) return undefined;
    if (event === OUTCOME_EVENT) return this.settle(channel, frame.data);
    const position = parsePosition(frame[POSITION_FIELD]);
    if (!position) return undefined;
    if (alreadySeen(position, this.channels.get(channel))) return { channel, event, duplicate: true };
    this.advance(channel, position);
    return undefined;
  }

  /**
   * An outcome (after a subscribe, or on an open subscription after the server's own feed broke):
   * where the client now is, and whether a gap went unfilled.
   */
  private settle(channel: string, data: unknown): FrameVerdict | undefined {
    let outcome: Outcome;
    try {
      outcome = typeof data === 'string' ? JSON.parse(data) : {};
    } catch {
      return undefined;
    }
    const reason = typeof outcome.reason === 'string' ? outcome.reason : 'unknown';
    const wasUnknown = this.unknown.get(channel);
    // Also after recovered: false, the outcome's position is where live events continue from.
    this.advance(channel, parsePosition(outcome.position));
    // No position because the history was unavailable: not where the gap just reported ends, so no
    // position to resume from either, until an event brings one (docs/recovery.md).
    if (outcome.position === null && reason === 'unavailable') this.unknown.set(channel, 'unavailable');
    if (outcome.recovered === true) return undefined;
    if (outcome.recovered === false) return { channel, event: OUTCOME_EVENT, continuityLost: reason };
    // The outcome of a subscribe without a position, for a channel that may have missed events (a
    // channel without recovery promises nothing: pusher-js's behaviour).
    if (wasUnknown === undefined || reason === 'disabled') return undefined;
    return { channel, event: OUTCOME_EVENT, continuityLost: wasUnknown };
  }

  private advance(channel: string, position: Position | undefined): void {
    this.channels.set(channel, position);
    this.unknown.delete(channel);
    this.store.savePosition(channel, position);
  }
}
