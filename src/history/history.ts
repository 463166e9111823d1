// Message recovery's channel history (docs/recovery.md): which channels keep one, positions, and the
// read side every engine implements. Recording happens in the backbone, in the same step as the
// fan-out, so that numbering and delivery order can never diverge.
import type { App } from '../apps/app.js';

export interface HistoryPolicy {
  /** events kept */
  size: number;
  /** how long an event is kept, ms */
  ttlMs: number;
}

/** How long a channel's numbering (its epoch and serial) outlives its last event, ms. */
export const EPOCH_KEEP_MS = 24 * 3600 * 1000;

/** The app's history policy for a channel, or undefined when the channel has no recovery. */
export function policyOf(app: App, channel: string): HistoryPolicy | undefined {
  const r = app.recovery;
  if (!r) return undefined;
  let best: (typeof r.channels)[number] | undefined;
  for (const c of r.channels) if (channel.startsWith(c.prefix) && (!best || c.prefix.length > best.prefix.length)) best = c;
  const size = best?.historySize ?? r.historySize;
  if (size === 0) return undefined;
  return { size, ttlMs: (best?.historyTtl ?? r.historyTtl) * 1000 };
}

export interface Position {
  epoch: string;
  serial: number;
}

export function formatPosition(p: Position): string {
  return `${p.epoch}:${p.serial}`;
}

/** A client's position string, or undefined when it is not one. */
export function parsePosition(text: unknown): Position | undefined {
  if (typeof text !== 'string') return undefined;
  const m = /^([0-9a-z]{1,32}):(\d{1,15})$/.exec(text);
  return m ? { epoch: m[1], serial: Number(m[2]) } : undefined;
}

/** A new epoch name: random, [0-9a-z]. */
export function newEpoch(): string {
  return `${Date.now().toString(36)}${Math.floor(Math.random() * 36 ** 6).toString(36)}`;
}

export interface RecordedEvent {
  serial: number;
  /** the frame as delivered to subscribers without recovery */
  frame: string;
  /** the socket the publisher excluded, if any */
  except?: string;
  /** ms since epoch when it was recorded */
  t: number;
}

export interface HistoryPage {
  epoch: string;
  /** the serial of the channel's last recorded event (0: none yet in this epoch) */
  last: number;
  /** the oldest serial still kept (last + 1 when none is) */
  first: number;
  /** events after the requested position, oldest first, at most the requested number */
  events: RecordedEvent[];
}

export interface ChannelHistory {
  /**
   * The channel's events after `afterSerial` (of the current epoch; 0 = from the oldest kept), at most
   * `limit`. Starts the channel's numbering when it has none, so every reader gets a position.
   */
  read(appId: string, channel: string, afterSerial: number, limit: number, policy: HistoryPolicy): Promise<HistoryPage>;
}

export type RecoveryVerdict = { recovered: true; events: RecordedEvent[] } | { recovered: false; reason: 'epoch_changed' | 'trimmed' | 'too_many' };

/** All or nothing (docs/recovery.md): the missed events if every one of them is still kept. */
export function verdict(page: HistoryPage, from: Position, maxReplay: number): RecoveryVerdict {
  if (from.epoch !== page.epoch || from.serial > page.last) return { recovered: false, reason: 'epoch_changed' };
  if (from.serial < page.last && from.serial + 1 < page.first) return { recovered: false, reason: 'trimmed' };
  if (page.last - from.serial > maxReplay) return { recovered: false, reason: 'too_many' };
  return { recovered: true, events: page.events };
}
