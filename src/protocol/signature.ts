// Signature checks (spec §4.2-§4.6, §9.2). Pure functions; HMAC-SHA256 hex, constant-time compares.
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

export function hmacSha256Hex(secret: string, message: string): string {
  return createHmac('sha256', secret).update(message, 'utf8').digest('hex');
}

export function md5Hex(body: Buffer | string): string {
  return createHash('md5').update(body).digest('hex');
}

/** Constant-time equality of two strings (false for different lengths without leaking content). */
export function safeEqual(a: string, b: string): boolean {
  const ab = Buffer.from(a, 'utf8');
  const bb = Buffer.from(b, 'utf8');
  if (ab.length !== bb.length) {
    timingSafeEqual(ab, ab);
    return false;
  }
  return timingSafeEqual(ab, bb);
}

/** The string a channel-subscription token signs: `socket_id:channel[:channel_data]` (spec §4.2, §4.3). */
export function channelAuthString(socketId: string, channel: string, channelData?: string): string {
  return channelData === undefined ? `${socketId}:${channel}` : `${socketId}:${channel}:${channelData}`;
}

/** The string a sign-in token signs: `socket_id::user::user_data` (spec §4.6). */
export function signinAuthString(socketId: string, userData: string): string {
  return `${socketId}::user::${userData}`;
}

/** Checks an `<app_key>:<hex>` token over `message`. */
export function verifyToken(appKey: string, secret: string, token: unknown, message: string): boolean {
  if (typeof token !== 'string') return false;
  const colon = token.indexOf(':');
  if (colon < 0) return false;
  const keyOk = safeEqual(token.slice(0, colon), appKey);
  const sigOk = safeEqual(token.slice(colon + 1), hmacSha256Hex(secret, message));
  return keyOk && sigOk;
}

/** The string a REST request signs (spec §9.2): METHOD\nPATH\nsorted query without auth_signature. */
export function restStringToSign(method: string, path: string, query: Record<string, string>): string {
  const keys = Object.keys(query)
    .filter((k) => k !== 'auth_signature')
    .sort();
  const qs = keys.map((k) => `${k}=${query[k]}`).join('&');
  return `${method.toUpperCase()}\n${path}\n${qs}`;
}
