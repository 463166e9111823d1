// The debug console's session as a program outside the browser asks for it (`ripple tail`, `ripple
// doctor --webhooks`, the tests): signed like a REST request, so the app's secret is never sent. The
// stream's records are read with console/events.ts's readStream, as the page reads them.
import { createHmac } from 'node:crypto';

export interface SessionAnswer {
  status: number;
  token?: string;
  error?: string;
  /** the answer's body as sent */
  text: string;
}

/**
 * Asks `<apiUrl>/session` (apiUrl: `http[s]://host[/prefix]/ripple/console/api/apps/<id>`) for a session
 * token with the app's key and secret: a REST-style signature over the path (spec §9.2). Never throws for a
 * refusal: the status and error say what it was.
 */
export async function requestSession(apiUrl: string, key: string, secret: string, signal?: AbortSignal): Promise<SessionAnswer> {
  const url = new URL(`${apiUrl}/session`);
  const q: Record<string, string> = { auth_key: key, auth_timestamp: String(Math.floor(Date.now() / 1000)), auth_version: '1.0' };
  const signed = Object.keys(q).sort().map((k) => `${k}=${q[k]}`).join('&');
  const signature = createHmac('sha256', secret).update(`POST\n${url.pathname}\n${signed}`).digest('hex');
  const res = await fetch(`${url}?${new URLSearchParams({ ...q, auth_signature: signature })}`, { method: 'POST', signal });
  const text = await res.text();
  let body: { token?: string; error?: string } = {};
  try {
    body = JSON.parse(text) as typeof body;
  } catch {
    // not JSON: a proxy's or another server's page; the caller shows the text
  }
  return { status: res.status, token: body.token, error: body.error, text };
}
