// Message recovery for one subscription (docs/recovery.md): after subscription_succeeded, the missed
// events (all of them or none), then the outcome frame, then the live frames held meanwhile without
// those the replay already held. The subscription is held in the hub from its start, so nothing
// published while the history is read is lost or sent out of order.
import type { Logger } from 'pino';
import type { Backbone } from '../backbone/backbone.js';
import { formatPosition, parsePosition, verdict, type ChannelHistory, type HistoryPolicy, type Position } from '../history/history.js';
import type { Hold, Hub } from '../hub/hub.js';
import { Codes } from '../protocol/constants.js';
import * as frames from '../protocol/frames.js';
import type { ChannelMember, RecoveryRequest, Subscription } from './member.js';

/** Events one recovering subscribe replays at most; a longer gap is `too_many` (the REST history pages). */
export const MAX_REPLAY = 1000;

/** Live frames held per subscription while its replay is written, on top of the replay's size. */
export const HOLD_MARGIN = 1000;

export interface RecoveryDeps {
  hub: Hub;
  backbone: Backbone;
  history: ChannelHistory;
  log: Logger;
}

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
): Promise<boolean> {
  const app = s.app;
  let outcome: frames.RecoveryOutcome;
  let upTo: { epoch: string; serial: number } | undefined;
  try {
    // Frames of the channel must reach this node before the history is read, or some could fall between.
    await d.backbone.interestReady(app.id, channel);
    const from = request.position;
    const page = await d.history.read(app.id, channel, from?.serial ?? 0, from ? MAX_REPLAY : 0, policy);
    if (!current()) return false;
    upTo = { epoch: page.epoch, serial: page.last };
    if (!from) {
      upTo = beforeHeld(sub.hold, upTo);
      outcome = { position: formatPosition(upTo) };
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
    d.log.warn({ err, app: app.id, channel }, 'history unavailable for a recovering subscribe');
    outcome = request.position ? { position: null, recovered: false, reason: 'unavailable' } : { position: null, reason: 'unavailable' };
  }
  s.send(frames.recoveryOutcome(channel, outcome));
  release(d, s, channel, sub, upTo);
  return outcome.recovered === true;
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
function release(d: RecoveryDeps, s: ChannelMember, channel: string, sub: Subscription, upTo: { epoch: string; serial: number } | undefined): void {
  const hold = sub.hold;
  if (!hold) return;
  sub.hold = undefined;
  d.hub.release(hold, s.app.id, channel);
  sub.positioned = true;
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
