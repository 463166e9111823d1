// A refused subscription, wherever it is decided (the session's checks, the presence store's member
// limit): the client gets pusher:subscription_error (spec §3.5), the operator a debug line and
// ripple_subscriptions_refused_total by reason. The line names the channel, never the auth token or
// the channel_data.
import type { Logger } from 'pino';
import { subscriptionFix } from '../console/doctor.js';
import type { Diagnosis } from '../console/events.js';
import type { ConsoleTap } from '../console/tap.js';
import type { Metrics } from '../metrics/metrics.js';
import * as frames from '../protocol/frames.js';
import type { ChannelMember } from './member.js';

/** Why a subscription was refused: the `reason` label of ripple_subscriptions_refused_total. */
export type SubscriptionRefusalReason =
  | 'name_too_long'
  | 'invalid_name'
  | 'channel_limit'
  | 'auth'
  | 'not_signed_in'
  | 'channel_data'
  | 'user_id_too_long'
  | 'member_too_large'
  | 'presence_full'
  | 'presence_unavailable';

export interface SubscriptionRefusal {
  reason: SubscriptionRefusalReason;
  type: frames.SubscriptionErrorType;
  error: string;
  status: number;
}

/** What a refusal is reported to. */
export interface RefusalDeps {
  log: Logger;
  metrics: Pick<Metrics, 'subscriptionsRefused'>;
  tap: ConsoleTap;
}

/** A name over the length limit can be as long as a frame: the log keeps its start. */
const LOGGED_NAME_CHARS = 256;

/** `doctor`: what the connection doctor can say beyond the reason (a bad signature's signed string), asked only while the app is watched. */
export function refuseSubscription(d: RefusalDeps, s: ChannelMember, channel: string, r: SubscriptionRefusal, doctor?: () => Diagnosis): void {
  d.metrics.subscriptionsRefused.inc({ app: s.app.id, reason: r.reason });
  d.log.debug(
    { app: s.app.id, socketId: s.socketId, channel: channel.slice(0, LOGGED_NAME_CHARS), reason: r.reason, status: r.status, error: r.error },
    'subscription refused',
  );
  s.send(frames.subscriptionError(channel, r.type, r.error, r.status));
  if (d.tap.on && d.tap.watches(s.app.id)) {
    d.tap.emit({
      type: 'subscription_refused',
      appId: s.app.id,
      socketId: s.socketId,
      channel: channel.slice(0, LOGGED_NAME_CHARS),
      detail: { reason: r.reason, status: r.status, error: r.error },
      doctor: doctor?.() ?? { problem: r.error, fix: subscriptionFix(r.reason) },
    });
  }
}
