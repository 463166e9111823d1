// Client → server frame parsing with cheap hand checks (no schema library on the per-frame path).

export interface ClientFrame {
  event: string;
  channel?: string;
  data?: unknown;
}

export type ParseResult = { ok: true; frame: ClientFrame } | { ok: false; message: string };

export function parseClientFrame(text: string): ParseResult {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return { ok: false, message: 'Invalid JSON' };
  }
  if (!v || typeof v !== 'object' || Array.isArray(v)) return { ok: false, message: 'A frame must be a JSON object' };
  const o = v as Record<string, unknown>;
  if (typeof o.event !== 'string' || o.event === '') return { ok: false, message: 'Missing "event" field' };
  if (o.channel !== undefined && typeof o.channel !== 'string') return { ok: false, message: '"channel" must be a string' };
  return { ok: true, frame: { event: o.event, channel: o.channel as string | undefined, data: o.data } };
}

/**
 * pusher-js sends `data` of pusher:* events as an object; other clients send a JSON string
 * (spec §1.5). Returns the object, or undefined when it is neither.
 */
export function dataObject(data: unknown): Record<string, unknown> | undefined {
  if (typeof data === 'string') {
    try {
      data = JSON.parse(data);
    } catch {
      return undefined;
    }
  }
  return data && typeof data === 'object' && !Array.isArray(data) ? (data as Record<string, unknown>) : undefined;
}
