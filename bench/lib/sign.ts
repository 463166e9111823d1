// Pusher REST request signing (spec §9.2), written for the bench so it does not depend on the SDK or
// on the server's own code.
import { createHash, createHmac } from 'node:crypto';

export interface Credentials {
  id: string;
  key: string;
  secret: string;
}

/**
 * Returns the signed query string (without a leading `?`) for METHOD PATH with `params` and `body`.
 * String to sign: METHOD \n PATH \n sorted `key=value` pairs (lower-cased keys, raw values) joined by &.
 */
export function signedQuery(
  creds: Credentials,
  method: string,
  path: string,
  body: string | Buffer | undefined,
  params: Record<string, string> = {},
  timestamp: number = Math.floor(Date.now() / 1000),
): string {
  const all: Record<string, string> = {};
  for (const [k, v] of Object.entries(params)) all[k.toLowerCase()] = v;
  all.auth_key = creds.key;
  all.auth_timestamp = String(timestamp);
  all.auth_version = '1.0';
  if (body !== undefined && body.length > 0) all.body_md5 = createHash('md5').update(body).digest('hex');
  const query = Object.keys(all)
    .sort()
    .map((k) => `${k}=${all[k]}`)
    .join('&');
  const toSign = `${method.toUpperCase()}\n${path}\n${query}`;
  const signature = createHmac('sha256', creds.secret).update(toSign).digest('hex');
  return `${query}&auth_signature=${signature}`;
}

/** Checks the signer against the spec's §9.6 vectors; throws on mismatch. */
export function selfTest(): void {
  const creds = { id: '3', key: '278d425bdf160c739803', secret: '7ad3773142a6692b25b8' };
  const body = '{"name":"foo","channels":["project-3"],"data":"{\\"some\\":\\"data\\"}"}';
  const q = signedQuery(creds, 'POST', '/apps/3/events', body, {}, 1353088179);
  const want = 'da454824c97ba181a32ccc17a72625ba02771f50b50e1e7430e47a1f3f457e6c';
  if (!q.includes('body_md5=ec365a775a4cd0599faeb73354201b6f') || !q.endsWith(`auth_signature=${want}`)) {
    throw new Error(`signer self-test failed: ${q}`);
  }
  const q2 = signedQuery(
    creds,
    'GET',
    '/apps/3/channels',
    undefined,
    { filter_by_prefix: 'presence-', info: 'user_count' },
    1353088179,
  );
  if (!q2.endsWith('auth_signature=16819168891cb5dfd72b5c7a5d3d602605b26c6ba1930033b5e2eeeb65010291')) {
    throw new Error(`signer self-test (GET) failed: ${q2}`);
  }
}
