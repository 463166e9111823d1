// The connection doctor (issue 21): for each refused handshake, subscription and REST request, what
// went wrong and how to fix it, in a developer's words. Pure functions over what the server knows:
// for a bad signature it signs again the strings the usual mistakes would have signed (another app's
// secret, socket id and channel swapped, channel_data left out, a body changed after signing, a path
// signed without the proxy's prefix) and names the one the client's signature matches. A diagnosis
// never holds a secret; it reaches only the operator and the app's owner (console/access.ts), and the
// other app a mistake points to is named to the operator only (Diagnosis.otherApp, console/routes.ts).
import { hmacSha256Hex, md5Hex, restStringToSign, safeEqual } from '../protocol/signature.js';
import type { Diagnosis } from './events.js';
import type { PeerApp } from './tap.js';

/** The keys named to the operator for an unknown key (a database may hold thousands). */
export const LISTED_KEYS = 20;
/** Other apps whose secrets are tried against a bad signature: a bound on the work one refusal costs. */
export const TRIED_PEERS = 1000;

function keyList(keys: readonly string[]): string {
  if (keys.length === 0) return '(none)';
  const shown = keys.slice(0, LISTED_KEYS).join(', ');
  return keys.length > LISTED_KEYS ? `${shown} and ${keys.length - LISTED_KEYS} more` : shown;
}

/** A refused handshake (session/handshake.ts's reasons). `keys`: the keys that exist, for the operator. */
export function diagnoseHandshake(reason: string, req: { key: string; origin: string; protocol: string }, allowedOrigins: readonly string[] = [], keys?: readonly string[]): Diagnosis {
  switch (reason) {
    case 'unknown_app':
      return {
        problem: `No app has the key "${req.key}".`,
        fix:
          'Give pusher-js the app\'s key (not its id or secret) and point it at this server (wsHost, wsPort, forceTLS).' +
          (keys ? ` Keys this server knows: ${keyList(keys)}.` : ''),
      };
    case 'app_disabled':
      return { problem: 'The app is disabled.', fix: 'Enable it (ripple apps update <id> --enabled=true) or use another app\'s key.' };
    case 'origin':
      return {
        problem: `The page's origin ${req.origin || '(none sent)'} is not in the app's allowed origins (${allowedOrigins.join(', ')}).`,
        fix: `Add "${req.origin || 'the page\'s origin'}" to the app's allowedOrigins, exactly as the browser sends it (scheme, host and port, no path or trailing slash).`,
      };
    case 'protocol':
      return { problem: `The client speaks protocol version ${req.protocol}; this server speaks 4 to 7.`, fix: 'Upgrade the client library (pusher-js 4 or newer sends protocol=7).' };
    case 'connection_quota':
      return { problem: 'The app is over its connection quota (maxConnections), counted across the cluster.', fix: 'Raise the app\'s maxConnections, or close connections the app no longer needs.' };
    case 'open_files':
      return { problem: 'This node is out of file descriptors for new connections.', fix: 'Raise the process\'s open-file limit (ulimit -n, LimitNOFILE) or add nodes.' };
    case 'draining':
      return { problem: 'This node is shutting down.', fix: 'Nothing: the client reconnects to another node by itself.' };
    default:
      return { problem: 'The app store could not be asked (database unreachable).', fix: 'Check the app database; the client retries by itself.' };
  }
}

/** A private or presence subscription whose auth did not verify (spec §4.2, §4.3). */
export function diagnoseChannelAuth(app: PeerApp, peers: readonly PeerApp[], socketId: string, channel: string, channelData: string | undefined, auth: unknown): Diagnosis {
  const signed = channelData === undefined ? `${socketId}:${channel}` : `${socketId}:${channel}:${channelData}`;
  const base = { problem: 'The subscription\'s auth signature does not match.', signed };
  if (typeof auth !== 'string' || auth.indexOf(':') < 0) {
    return { ...base, problem: 'The subscription has no auth, or it is not "<key>:<signature>".', fix: 'Your auth endpoint must answer {"auth": "<key>:<hex HMAC-SHA256 of the signed string>"} (use the pusher server SDK\'s authorizeChannel).' };
  }
  const colon = auth.indexOf(':');
  const key = auth.slice(0, colon);
  const signature = auth.slice(colon + 1);
  const other = peers.find((p) => p.id !== app.id && p.key === key);
  if (key !== app.key) {
    return {
      ...base,
      matches: other ? 'the key of another app on this server' : undefined,
      fix: `The auth names key "${key}" but the connection's app has key "${app.key}": your auth endpoint signs for another app. Give it this app's key and secret.`,
      otherApp: other?.id,
    };
  }
  const is = (secret: string, text: string) => safeEqual(signature, hmacSha256Hex(secret, text));
  const wrongSecret = peers.slice(0, TRIED_PEERS).find((p) => p.id !== app.id && is(p.secret, signed));
  if (wrongSecret) return { ...base, matches: 'signed with another app\'s secret', fix: `Your auth endpoint uses another app's secret: give it the secret of app ${app.id}.`, otherApp: wrongSecret.id };
  if (is(app.secret, `${channel}:${socketId}`)) return { ...base, matches: `${channel}:${socketId}`, fix: 'The socket id and the channel are swapped: sign "<socket_id>:<channel>".' };
  if (channelData !== undefined && is(app.secret, `${socketId}:${channel}`)) {
    return { ...base, matches: `${socketId}:${channel}`, fix: 'The channel_data the client sent was not signed: sign "<socket_id>:<channel>:<channel_data>" with the exact channel_data string.' };
  }
  if (channelData === undefined && channel.startsWith('presence-')) {
    return { ...base, fix: 'A presence subscription needs channel_data, signed as "<socket_id>:<channel>:<channel_data>".' };
  }
  return { ...base, fix: 'Sign exactly the string the server signed with this app\'s secret (HMAC-SHA256, hex). A different socket id means the auth was made for an earlier connection: request it again after each connect.' };
}

export interface RestRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  rawBody?: Buffer;
}

/** A REST request the signature check refused (spec §9.2), re-examined step by step; undefined when its signature is good. */
export function diagnoseRest(app: PeerApp | undefined, enabled: boolean, peers: readonly PeerApp[], req: RestRequest, nowMs: number, maxSkewS: number): Diagnosis | undefined {
  if (!app) return { problem: 'No app has this id.', fix: 'Use the app\'s id (not its key) in /apps/<id>/.' };
  const { auth_key: key, auth_timestamp: ts, auth_signature: signature } = req.query;
  if (!key || !ts || !signature) return { problem: 'auth_key, auth_timestamp or auth_signature is missing.', fix: 'Sign the request as the pusher server SDKs do.' };
  if (key !== app.key) {
    const other = peers.find((p) => p.key === key);
    return { problem: `auth_key "${key}" is not this app's key.`, fix: other ? `It is another app's key: configure the SDK with app ${app.id}'s key and secret.` : `Use app ${app.id}'s key "${app.key}".`, otherApp: other?.id };
  }
  const skew = Math.round(Number(ts) - nowMs / 1000);
  if (!Number.isFinite(skew) || Math.abs(skew) > maxSkewS) {
    return {
      problem: Number.isFinite(skew) ? `The request's clock is ${Math.abs(skew)} s ${skew > 0 ? 'ahead of' : 'behind'} the server's (at most ${maxSkewS} s allowed).` : 'auth_timestamp is not a number.',
      fix: 'Set the sending machine\'s clock (NTP); auth_timestamp is seconds since the epoch.',
    };
  }
  const body = req.rawBody;
  const signed = restStringToSign(req.method, req.path, req.query);
  if (body && body.length > 0 && req.query.body_md5 !== md5Hex(body)) {
    return { problem: 'body_md5 does not match the body that arrived: the body was changed after it was signed (or not signed).', fix: 'Sign the exact bytes you send; a proxy or client that re-encodes JSON changes them.', signed };
  }
  const is = (secret: string, text: string) => safeEqual(signature, hmacSha256Hex(secret, text));
  if (is(app.secret, signed)) return enabled ? undefined : { problem: 'The app is disabled.', fix: 'Enable it (ripple apps update <id> --enabled=true).' };
  const wrongSecret = peers.slice(0, TRIED_PEERS).find((p) => p.id !== app.id && is(p.secret, signed));
  if (wrongSecret) return { problem: 'The signature does not match.', signed, matches: 'signed with another app\'s secret', fix: `The SDK uses another app's secret: give it app ${app.id}'s.`, otherApp: wrongSecret.id };
  const apps = req.path.indexOf('/apps/');
  if (apps > 0) {
    const unprefixed = restStringToSign(req.method, req.path.slice(apps), req.query);
    if (is(app.secret, unprefixed)) return { problem: 'The signature does not match.', signed, matches: unprefixed, fix: `The client signed the path without "${req.path.slice(0, apps)}": a proxy adds it. Sign the path the server sees, or strip the prefix in the proxy.` };
  }
  return { problem: 'The signature does not match.', signed, fix: 'Sign exactly the string the server signed with this app\'s secret (HMAC-SHA256, hex): method upper-case, the path as sent, the query sorted by key, without auth_signature. If the secret was rotated, give the SDK the new one.' };
}

/** How to fix a refused subscription, by its reason (channels/refusal.ts); a bad signature has its own diagnosis. */
export function subscriptionFix(reason: string): string {
  switch (reason) {
    case 'name_too_long':
      return 'Use a shorter channel name (the app\'s maxChannelNameLength).';
    case 'invalid_name':
      return 'Channel names may hold letters, digits and _ - = @ , . ; only, with a known prefix (private-, presence-, private-encrypted-, cache-...).';
    case 'channel_limit':
      return 'Unsubscribe from channels the connection no longer needs, or raise the app\'s maxChannelsPerConnection.';
    case 'not_signed_in':
      return 'Sign in (pusher.signin()) as this user before subscribing to #server-to-user-<id>.';
    case 'channel_data':
    case 'user_id_too_long':
    case 'member_too_large':
      return 'Your auth endpoint\'s channel_data must be JSON with a string user_id (and user_info) within the app\'s limits.';
    case 'presence_full':
      return 'The presence channel is full: raise the app\'s maxPresenceMembersPerChannel, or use more channels.';
    case 'presence_unavailable':
      return 'The cluster\'s presence store (Redis) did not answer: the client can subscribe again.';
    default:
      return 'Check the auth endpoint\'s answer for this channel.';
  }
}
