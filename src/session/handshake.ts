// The Pusher rules for opening a connection (spec §1.2), the same for every transport: the app by its
// key, refused with the code the spec names when it does not exist, is disabled, the origin is not
// allowed, the node is draining, or the protocol version is unsupported. Pure: the admission step
// (admission.ts) looks the app up and applies these.
import type { App } from '../apps/app.js';
import { Codes, SUPPORTED_PROTOCOL_MAX, SUPPORTED_PROTOCOL_MIN } from '../protocol/constants.js';

export interface HandshakeRequest {
  key: string;
  /** The `protocol` query parameter as sent ('' when absent). */
  protocol: string;
  /** The Origin header ('' when absent). */
  origin: string;
  /** The client's address as the transport sees it (for the log). */
  remoteAddress: string;
}

/** Why a connection was refused: the `reason` label of ripple_connections_refused_total. */
export type ConnectionRefusalReason =
  | 'unknown_app'
  | 'app_disabled'
  | 'origin'
  | 'draining'
  | 'protocol'
  | 'open_files'
  | 'connection_quota'
  | 'app_lookup_failed';

export interface HandshakeRefusal {
  ok: false;
  code: number;
  message: string;
  reason: ConnectionRefusalReason;
  /** The app the key named, when there is one. */
  app?: App;
}

/** Over the app's connection quota, counted cluster-wide (spec §2). */
export const overQuota: HandshakeRefusal = { ok: false, code: Codes.overConnectionQuota, message: 'Application is over connection quota', reason: 'connection_quota' };

/** No room on this node (its open-file reserve is reached): back off and reconnect (spec §1.7, §2). */
export const overCapacity: HandshakeRefusal = { ok: false, code: Codes.overCapacity, message: 'Over capacity', reason: 'open_files' };

/**
 * The app store could not answer (its database is unreachable): the app may well exist, so the client
 * is told to back off and come back (a 4100-4199 close), never that the key is unknown.
 */
export const lookupFailed: HandshakeRefusal = { ok: false, code: Codes.overCapacity, message: 'Apps cannot be looked up right now, try again', reason: 'app_lookup_failed' };

/** The refusal for a connection to `app` (undefined: no app has the key), or undefined to go on. */
export function checkHandshake(req: HandshakeRequest, app: App | undefined, draining: boolean): HandshakeRefusal | undefined {
  if (!app) return refuse('unknown_app', Codes.appNotFound, `App key ${req.key} does not exist.`);
  if (!app.enabled) return refuse('app_disabled', Codes.appDisabled, 'The app is disabled.', app);
  if (app.allowedOrigins.length > 0 && !app.allowedOrigins.includes('*') && !app.allowedOrigins.includes(req.origin)) {
    return refuse('origin', Codes.unauthorized, `The origin ${req.origin || '(none)'} is not allowed to connect.`, app);
  }
  if (draining) return refuse('draining', Codes.reconnectNow, 'Server is shutting down, reconnect.', app);
  if (req.protocol) {
    // A missing protocol is accepted as 7; anything else outside 4..7 is refused (spec §1.2).
    const p = Number(req.protocol);
    if (!Number.isInteger(p) || p < SUPPORTED_PROTOCOL_MIN || p > SUPPORTED_PROTOCOL_MAX) {
      return refuse('protocol', Codes.unsupportedProtocol, `Unsupported protocol version ${req.protocol}`, app);
    }
  }
  return undefined;
}

function refuse(reason: ConnectionRefusalReason, code: number, message: string, app?: App): HandshakeRefusal {
  return { ok: false, code, message, reason, app };
}
