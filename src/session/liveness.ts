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

/**
 * Liveness keeps time in ticks of 10 ms from a moment before the module loaded: a session's `alive`
 * is then a small integer (a V8 Smi, kept in the object) for 248 days instead of a boxed number of
 * 16 bytes per session. Deadlines are checked once per sweep (every 100 ms to 1 s), so a time rounded
 * down to its tick (a deadline met up to 10 ms early) is exact enough. At least 1: below 1 means a ping.
 */
const TICK_MS = 10;
const EPOCH = Date.now() - TICK_MS;

export function tick(now: number): number {
  return Math.max(1, Math.floor((now - EPOCH) / TICK_MS));
}

function msOf(tick: number): number {
  return EPOCH + tick * TICK_MS;
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
    s.alive = tick(now);
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
      // alive < 0: a ping went out at tick -alive and is unanswered; else the last frame came at tick alive.
      const alive = s.alive;
      if (alive < 0) {
        if (now - msOf(-alive) >= pongMs) s.conn.close(Codes.pongNotReceived, 'Pong reply not received');
      } else if (now - msOf(alive) >= idleMs) {
        s.alive = -tick(now);
        s.send(frames.pingFrame);
      }
    }
  }
}
