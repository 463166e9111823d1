// One webhook request as Pusher sends it (spec §10.1): POST {time_ms, events}, Content-Type exactly
// application/json, X-Pusher-Key and X-Pusher-Signature = hex HMAC-SHA256(app secret, raw body).
import { createHmac } from 'node:crypto';

export interface WebhookRequest {
  url: string;
  key: string;
  secret: string;
  /** The endpoint's extra headers; ours win where names collide. */
  headers: Record<string, string>;
  events: readonly object[];
  timeoutMs: number;
}

export type SendResult = { ok: true; status: number } | { ok: false; error: string };

export function webhookBody(events: readonly object[], timeMs = Date.now()): string {
  return JSON.stringify({ time_ms: timeMs, events });
}

export function signWebhook(secret: string, rawBody: string): string {
  return createHmac('sha256', secret).update(rawBody).digest('hex');
}

/** Sends once; any 2xx is success, anything else (status, refusal, timeout) a failure to retry. */
export async function sendWebhook(req: WebhookRequest): Promise<SendResult> {
  try {
    // Inside the try: a body that cannot be serialised is a failed attempt, never an escaped throw.
    const body = webhookBody(req.events);
    const res = await fetch(req.url, {
      method: 'POST',
      headers: {
        ...req.headers,
        'content-type': 'application/json',
        'x-pusher-key': req.key,
        'x-pusher-signature': signWebhook(req.secret, body),
      },
      body,
      redirect: 'manual',
      signal: AbortSignal.timeout(req.timeoutMs),
    });
    // Drain the body so the connection goes back to the pool.
    await res.arrayBuffer().catch(() => undefined);
    if (res.status >= 200 && res.status < 300) return { ok: true, status: res.status };
    return { ok: false, error: `HTTP ${res.status}` };
  } catch (err) {
    const e = err as Error & { cause?: { code?: string } };
    return { ok: false, error: e.name === 'TimeoutError' ? `no answer within ${req.timeoutMs} ms` : (e.cause?.code ?? e.message) };
  }
}
