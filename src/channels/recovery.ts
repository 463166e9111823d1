// Message recovery for one subscription (docs/recovery.md): after subscription_succeeded, the missed
// events (all of them or none), then the outcome frame, then the live frames held meanwhile without
// those the replay already held. The subscription is held in the hub from its start, so nothing
// published while the history is read is lost or sent out of order. The same runs again for an open
// subscription when the node's feed of other nodes' frames broke (a refill): the client then hears
// only of a gap that could not be filled.
import type { ConsoleTap } from '../console/tap.js';
import type { Logger } from 'pino';
import type { Backbone } from '../backbone/backbone.js';
import { formatPosition, parsePosition, verdict, type HistoryPage, type HistoryPolicy, type Position } from '../history/history.js';
import type { Hold, Hub } from '../hub/hub.js';
import { Codes } from '../protocol/constants.js';
import * as frames from '../protocol/frames.js';
import type { ChannelMember, RecoveryRequest, Subscription } from './member.js';
import type { PositionedSubscriptions } from './positioned.js';
import type { SharedReads } from './shared-reads.js';

/** Events one recovering subscribe replays at most; a longer gap is `too_many` (the REST history pages). */
export const MAX_REPLAY = 1000;

/** Live frames held per subscription while its replay is written, on top of the replay's size. */
export const HOLD_MARGIN = 1000;

/**
 * A refill reads the history again when it fails (Redis' command connection may come back a moment
 * after the subscriber connection), this many times, this far apart, before it reports `unavailable`.
 */
const REFILL_READS = 8;
const REFILL_RETRY_MS = 250;

export interface RecoveryDeps {
  hub: Hub;
  backbone: Backbone;
  reads: SharedReads;
  /** every positioned subscription of the node (refilled after a break in the feed, or a gap on their channel) */
  positioned: PositionedSubscriptions;
  log: Logger;
  tap: ConsoleTap;
}

/** A subscribe (its outcome always follows subscription_succeeded), or an open subscription refilled after a break in the feed. */
export type RecoveryKind = 'subscribe' | 'refill';

/**
 * Writes the replay and the outcome; resolves true when the gap was recovered. `current` tells whether
 * the subscription is still the one being recovered (a leave meanwhile ends it).
 */
export async function recover(
  d: RecoveryDeps,
  s: ChannelMember,
  channel: string,
  sub: Subscription,
  request: RecoveryRequest,
  policy: HistoryPolicy,
  current: () => boolean,
  kind: RecoveryKind = 'subscribe',
): Promise<boolean> {
  const app = s.app;
  let since = d.reads.mark();
  const from = request.position;
  let outcome: frames.RecoveryOutcome;
  let upTo: Position | undefined;
  try {
    let page: HistoryPage;
    for (let attempt = 1; ; attempt++) {
      // Frames of the channel must reach this node before the history is read, or some could fall between.
      const stretch = await d.backbone.interestReady(app.id, channel);
      try {
        page = await d.reads.read(since, stretch, app.id, channel, from?.serial ?? 0, from ? MAX_REPLAY : 0, policy);
      } catch (err) {
        if (kind !== 'refill' || attempt >= REFILL_READS || !current()) throw err;
        await new Promise((r) => setTimeout(r, REFILL_RETRY_MS));
        continue;
      }
      // ...and every frame the read counted must be in the hold before it ends, or one could come again after the replay.
      const caughtUp = await d.backbone.caughtUp(stretch);
      if (!current()) return false;
      // The held recorded events must follow the read without a hole and reach where the channel's
      // other opted-in subscriptions are: else one never reached the node (a gap, docs/recovery.md),
      // and a read issued now counts it. (A hold that overflowed closes the connection instead.)
      if (caughtUp && (sub.hold?.overflowed || continuous(sub.hold, page, d.hub.position(app.id, channel)))) break;
      // The feed broke meanwhile, or the hold has a gap: read again (once the feed is back). That read
      // counts every recorded event held so far, and a replay that fills nothing must not start before the hole.
      sub.hold?.dropRecorded();
      if (caughtUp) since = d.reads.mark();
    }
    if (!current()) return false;
    upTo = { epoch: page.epoch, serial: page.last };
    if (!from) {
      upTo = beforeHeld(sub.hold, upTo);
      // A refilled subscription without a position: where the client was is unknown, so is what it missed.
      outcome = kind === 'refill' ? { position: formatPosition(upTo), recovered: false, reason: 'unavailable' } : { position: formatPosition(upTo) };
    } else {
      const v = verdict(page, from, MAX_REPLAY);
      if (v.recovered) {
        let replayed = 0;
        for (const ev of v.events) {
          // Events the client excluded itself from (socket_id on trigger, Echo's toOthers()) under an earlier socket id.
          if (ev.except !== undefined && request.socketIds.includes(ev.except)) continue;
          s.send(frames.withPosition(ev.frame, formatPosition({ epoch: page.epoch, serial: ev.serial })));
          replayed++;
        }
        outcome = { position: formatPosition(upTo), recovered: true, replayed };
      } else {
        upTo = beforeHeld(sub.hold, upTo);
        outcome = { position: formatPosition(upTo), recovered: false, reason: v.reason };
      }
    }
  } catch (err) {
    if (!current()) return false;
    d.log.warn({ err, app: app.id, channel }, kind === 'refill' ? 'history unavailable to refill a subscription after a break in the feed' : 'history unavailable for a recovering subscribe');
    // No position: where the channel is now is unknown (docs/recovery.md, `unavailable`).
    outcome = from || kind === 'refill' ? { position: null, recovered: false, reason: 'unavailable' } : { position: null, reason: 'unavailable' };
  }
  // A refill that filled the gap is silent: the replayed events carry their positions.
  if (kind === 'subscribe' || outcome.recovered !== true) s.send(frames.recoveryOutcome(channel, outcome));
  if (d.tap.on && d.tap.watches(app.id)) {
    const o = outcome as { position: string | null; recovered?: boolean; replayed?: number; reason?: string };
    d.tap.emit({ type: 'recovery', appId: app.id, socketId: s.socketId, channel, detail: { kind, from: from ? formatPosition(from) : undefined, position: o.position, recovered: o.recovered, replayed: o.replayed, reason: o.reason } });
  }
  release(d, s, channel, sub, upTo, current);
  return outcome.recovered === true;
}

/**
 * Whether the held recorded events of the page's epoch leave no event out: the first comes at most
 * right after the page's last, each next one right after the one before (one that came again is
 * skipped), and together they reach `at`, the channel's position in the hub (another epoch: not
 * compared, the history was lost).
 */
function continuous(hold: Hold | undefined, page: HistoryPage, at: string | undefined): boolean {
  // Held events before the page's last matter too: a subscription that replays nothing gets them all.
  let prev: number | undefined;
  for (const f of hold?.frames ?? []) {
    const p = parsePosition(f.position);
    if (!p || p.epoch !== page.epoch) continue;
    if (p.serial > (prev ?? page.last) + 1) return false;
    if (prev === undefined || p.serial > prev) prev = p.serial;
  }
  const q = parsePosition(at);
  return !q || q.epoch !== page.epoch || q.serial <= Math.max(page.last, prev ?? 0);
}

/**
 * Where a subscription that replays nothing (a first subscribe, or a gap not filled) starts: every frame
 * held since the subscribe began is a live one for it, also when the history read already counted it,
 * so it is just before the first of those.
 */
function beforeHeld(hold: Hold | undefined, upTo: Position): Position {
  for (const f of hold?.frames ?? []) {
    const p = parsePosition(f.position);
    if (!p || p.epoch !== upTo.epoch) continue;
    return p.serial <= upTo.serial ? { epoch: upTo.epoch, serial: p.serial - 1 } : upTo;
  }
  return upTo;
}

/** Ends the hold: the subscription joins its positioned topic and gets what was held, minus the replayed. */
function release(d: RecoveryDeps, s: ChannelMember, channel: string, sub: Subscription, upTo: Position | undefined, current: () => boolean): void {
  const hold = sub.hold;
  if (!hold) return;
  sub.hold = undefined;
  const app = s.app;
  d.hub.release(hold, app.id, channel, upTo && isNewer(upTo, d.hub.position(app.id, channel)) ? formatPosition(upTo) : undefined);
  sub.positioned = true;
  sub.unknownSince = upTo ? undefined : { position: d.hub.position(app.id, channel) };
  d.positioned.add(sub, { s, channel, current });
  if (hold.overflowed) {
    // More live frames than a hold keeps: the client reconnects at once and recovers from its position.
    s.conn.close(Codes.reconnectNow, 'Too many events while recovering, reconnect');
    return;
  }
  for (const f of hold.frames) {
    const p = parsePosition(f.position);
    if (p && upTo && p.epoch === upTo.epoch && p.serial <= upTo.serial) continue;
    s.send(f.frame);
  }
}

/**
 * Whether a replay reached past what the hub last delivered on the channel. Another epoch counts as
 * newer: the history the replay read began after the events the hub delivered.
 */
function isNewer(p: Position, than: string | undefined): boolean {
  const q = parsePosition(than);
  return !q || q.epoch !== p.epoch || p.serial > q.serial;
}
