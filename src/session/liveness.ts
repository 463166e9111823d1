// Liveness and backpressure decisions for every session, whatever its transport: pusher:ping to idle
// sessions, close 4201 when the ping goes unanswered (spec §1.6), and close 4100 for a slow consumer
// (back off and reconnect), so one stuck reader cannot grow the server's memory.
import type { Logger } from 'pino';
import { Codes } from '../protocol/constants.js';
import * as frames from '../protocol/frames.js';
import type { Connection } from '../hub/connection.js';
import type { Session } from './session.js';

/** A connection whose client reads too slowly: closed with 4100 (spec §1.7, §2), which pusher-js backs off on. */
export function closeSlowConsumer(conn: Connection, appId: string | undefined, log: Logger): void {
  log.info({ app: appId, buffered: conn.bufferedAmount() }, 'closing slow consumer');
  conn.close(Codes.overCapacity, 'Slow consumer: too many messages waiting to be sent');
}

export interface LivenessSettings {
  /** seconds of silence before the server pings (the activity_timeout it announces) */
  activityTimeout: number;
  /** seconds to wait for any frame after a ping */
  pongTimeout: number;
  /** bytes waiting to be sent above which a session is a slow consumer */
  maxBackpressureBytes: number;
}

export class Liveness {
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly sessions: () => Iterable<Session>,
    private readonly settings: LivenessSettings,
    private readonly log: Logger,
  ) {}

  start(): void {
    const { activityTimeout, pongTimeout } = this.settings;
    // A quarter of the shorter deadline, between 100 ms and 1 s: deadlines are kept to within that.
    const periodMs = Math.min(Math.max((Math.min(activityTimeout, pongTimeout) * 1000) / 4, 100), 1000);
    this.timer = setInterval(() => this.sweep(Date.now()), periodMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  /** A frame arrived: the session is alive. */
  static seen(s: Session, now: number): void {
    s.lastSeen = now;
    s.pingSentAt = 0;
  }

  sweep(now: number): void {
    const idleMs = this.settings.activityTimeout * 1000;
    const pongMs = this.settings.pongTimeout * 1000;
    const maxBuffered = this.settings.maxBackpressureBytes;
    for (const s of [...this.sessions()]) {
      if (s.closed) continue;
      const buffered = s.conn.bufferedAmount();
      if (buffered >= maxBuffered) {
        closeSlowConsumer(s.conn, s.app.id, this.log);
        continue;
      }
      if (s.pingSentAt) {
        if (now - s.pingSentAt >= pongMs) s.conn.close(Codes.pongNotReceived, 'Pong reply not received');
      } else if (now - s.lastSeen >= idleMs) {
        s.pingSentAt = now;
        s.send(frames.pingFrame);
      }
    }
  }
}
