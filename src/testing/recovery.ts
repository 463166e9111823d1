// Message recovery over raw frames (docs/recovery.md): a subscribe that opts in, and its outcome.
import type { RawClient } from './raw-client.js';

/** `pusher_internal:ripple_recovery`'s data. */
export interface RecoveryOutcome {
  position: string | null;
  recovered?: boolean;
  reason?: string;
  replayed?: number;
}

export interface RecoveringSubscribe {
  position?: string;
  socketIds?: string[];
  auth?: string;
  channelData?: string;
}

/** Subscribes with the recovery opt-in and resolves with the outcome the server sends. */
export async function subscribeRecovering(c: RawClient, channel: string, opts: RecoveringSubscribe = {}): Promise<RecoveryOutcome> {
  const ripple_recovery: Record<string, unknown> = {};
  if (opts.position !== undefined) ripple_recovery.position = opts.position;
  if (opts.socketIds) ripple_recovery.socket_ids = opts.socketIds;
  const data: Record<string, unknown> = { channel, auth: opts.auth ?? '', ripple_recovery };
  if (opts.channelData) data.channel_data = opts.channelData;
  c.send({ event: 'pusher:subscribe', data });
  const f = await c.nextEvent('pusher_internal:ripple_recovery', channel);
  return JSON.parse(f.data as string) as RecoveryOutcome;
}
