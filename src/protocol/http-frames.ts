// pusher-js's HTTP fallback transports (spec §13): the request paths it builds and the
// newline-delimited SockJS-style frames it reads from a receive response. Pure strings, no I/O.

/** pusher-js's default `httpPath`; ripple serves the HTTP transports under it (spec §13.1). */
export const HTTP_PATH_PREFIX = '/pusher';

/** The last path segment of each request kind (spec §13.1). */
export const HttpRequestKind = {
  streaming: 'xhr_streaming',
  polling: 'xhr',
  send: 'xhr_send',
} as const;

/** The session is open; pusher-js reads `o` only once per session (a second one is "Server lost session"). */
export const openFrame = 'o\n';

/** A heartbeat: a streaming client answers it with an empty send, a polling client just polls again. */
export const heartbeatFrame = 'h\n';

/** No messages: counts as activity for pusher-js without prompting it to answer (its ping reply). */
export const emptyMessagesFrame = 'a[]\n';

/** One Pusher frame as pusher-js reads it from a receive response: `a` + a JSON array of event strings. */
export function messagesFrame(pusherFrame: string): string {
  return `a${JSON.stringify([pusherFrame])}\n`;
}

/** The session is closed with a WebSocket-style close code (spec §1.7), which pusher-js acts on as on a socket's. */
export function closeFrame(code: number, reason: string): string {
  return `c${JSON.stringify([code, reason])}\n`;
}

/**
 * pusher-js ends a streaming request itself and opens the next one for the same session once it has
 * read more than this many characters from it (MAX_BUFFER_LENGTH in core/http/http_request.ts).
 */
export const STREAM_CLIENT_LIMIT_CHARS = 256 * 1024;

/** An xhr_send body: a JSON array of Pusher frames, each a string; `[]` is pusher-js's heartbeat. */
export function parseSendBody(text: string): string[] | undefined {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (!Array.isArray(body)) return undefined;
  for (const f of body) if (typeof f !== 'string') return undefined;
  return body as string[];
}
