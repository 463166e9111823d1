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

/**
 * The deepest nesting of arrays and objects accepted in data the server serialises again (client
 * events, presence user_info). JSON.parse reads any depth, but JSON.stringify recurses and overflows
 * the stack at a few thousand levels; real payloads nest a handful.
 */
export const MAX_DATA_DEPTH = 100;

/** Whether `value` nests arrays or objects deeper than `max` levels; iterative, so deep input never recurses. */
export function nestedDeeperThan(value: unknown, max: number): boolean {
  if (value === null || typeof value !== 'object') return false;
  const pending: { v: object; depth: number }[] = [{ v: value, depth: 1 }];
  while (pending.length) {
    const { v, depth } = pending.pop()!;
    if (depth > max) return true;
    for (const child of Array.isArray(v) ? v : Object.values(v)) {
      if (child !== null && typeof child === 'object') pending.push({ v: child as object, depth: depth + 1 });
    }
  }
  return false;
}
