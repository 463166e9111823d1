// Signs REST requests as spec §9.2 describes, independently of the server's code.
import { createHash, createHmac } from 'node:crypto';
import type { AppCredentials } from './harness.js';

export function signedUrl(base: string, app: AppCredentials, method: string, path: string, body?: string, params: Record<string, string> = {}, timestamp = Math.floor(Date.now() / 1000)): string {
  const q: Record<string, string> = { ...params, auth_key: app.key, auth_timestamp: String(timestamp), auth_version: '1.0' };
  if (body !== undefined && body.length > 0) q.body_md5 = createHash('md5').update(body).digest('hex');
  const query = Object.keys(q)
    .sort()
    .map((k) => `${k}=${q[k]}`)
    .join('&');
  const signature = createHmac('sha256', app.secret).update(`${method}\n${path}\n${query}`).digest('hex');
  return `${base}${path}?${query}&auth_signature=${signature}`;
}

/** A signed REST call; resolves to the status, headers and parsed JSON body. */
export async function rest(base: string, app: AppCredentials, method: 'GET' | 'POST', path: string, body?: unknown, params?: Record<string, string>) {
  const text = body === undefined ? undefined : JSON.stringify(body);
  const res = await fetch(signedUrl(base, app, method, path, text, params), {
    method,
    headers: text ? { 'content-type': 'application/json' } : undefined,
    body: text,
  });
  const raw = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch {
    json = raw;
  }
  return { status: res.status, headers: res.headers, body: json as Record<string, unknown> };
}
