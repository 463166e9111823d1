// Signature checks (spec §4.2-§4.6, §9.2). Pure functions; HMAC-SHA256 hex, constant-time compares.
import { createHmac, hash, timingSafeEqual } from 'node:crypto';

/**
 * HMAC-SHA256 (RFC 2104) from two one-shot hashes with the key's pads computed once per secret: a third
 * cheaper than an Hmac object per call, which was the REST path's largest cost (bench/RESULTS.md, issue 24).
 * Secrets that are not ASCII or longer than a block take createHmac (the pads are kept as a string,
 * which the hash encodes as UTF-8: byte for byte the same only while every pad byte is below 0x80).
 */
export function hmacSha256Hex(secret: string, message: string): string {
  const pads = padsOf(secret);
  if (!pads) return createHmac('sha256', secret).update(message, 'utf8').digest('hex');
  const outer = pads.outer;
  (hash('sha256', pads.inner + message, 'buffer') as unknown as Buffer).copy(outer, BLOCK);
  return hash('sha256', outer, 'hex');
}

const BLOCK = 64;
/** per secret: the inner pad as a string, and the outer pad followed by room for the inner digest */
const padCache = new Map<string, { inner: string; outer: Buffer } | null>();
const MAX_CACHED_SECRETS = 10_000;

function padsOf(secret: string): { inner: string; outer: Buffer } | null {
  let pads = padCache.get(secret);
  if (pads !== undefined) return pads;
  pads = null;
  if (secret.length <= BLOCK && /^[\x00-\x7f]*$/.test(secret)) {
    const key = Buffer.alloc(BLOCK);
    key.write(secret, 'latin1');
    const outer = Buffer.alloc(BLOCK + 32);
    let inner = '';
    for (let i = 0; i < BLOCK; i++) {
      inner += String.fromCharCode(key[i] ^ 0x36);
      outer[i] = key[i] ^ 0x5c;
    }
    pads = { inner, outer };
  }
  if (padCache.size >= MAX_CACHED_SECRETS) padCache.clear();
  padCache.set(secret, pads);
  return pads;
}

export function md5Hex(body: Buffer | string): string {
  // The one-shot hash (Node ≥ 20.12) costs a sixth of a Hash object's create/update/digest (bench/RESULTS.md, issue 24).
  return hash('md5', body, 'hex');
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
