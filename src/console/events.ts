// What the debug console shows (issue 21): one flat record per thing that happened to an app, built
// only while a console watches that app (tap.ts). Plain JSON, so it crosses nodes over Redis as is.

export type ConsoleEventType =
  | 'connection_opened'
  | 'connection_closed'
  | 'connection_refused'
  | 'subscribed'
  | 'subscription_refused'
  | 'unsubscribed'
  | 'channel_occupied'
  | 'channel_vacated'
  | 'member_added'
  | 'member_removed'
  | 'api_message'
  | 'api_refused'
  | 'client_event'
  | 'cache_miss'
  | 'webhook'
  | 'recovery'
  /** a node's connections and messages per second (the overview's charts), not shown in the log */
  | 'stats'
  /** a node started streaming this app's events (it heard a console's watch) */
  | 'watching'
  /** not an event of the app: this many were left out of the stream because it went over its rate */
  | 'skipped';

export const CONSOLE_EVENT_TYPES: readonly ConsoleEventType[] = [
  'connection_opened',
  'connection_closed',
  'connection_refused',
  'subscribed',
  'subscription_refused',
  'unsubscribed',
  'channel_occupied',
  'channel_vacated',
  'member_added',
  'member_removed',
  'api_message',
  'api_refused',
  'client_event',
  'cache_miss',
  'webhook',
  'recovery',
  'watching',
  'stats',
  'skipped',
];

/**
 * The connection doctor's explanation of a refusal: what went wrong and how to fix it. `signed` is the
 * string the server signed (never a secret), `matches` the usual mistake the client's signature fits.
 */
export interface Diagnosis {
  problem: string;
  fix: string;
  signed?: string;
  matches?: string;
  /**
   * The id of the other app the mistake points to (its key or its secret was used). The texts above say
   * only "another app": this is shown to the operator, and left out of an app owner's stream (an app's
   * owner does not learn the ids of the server's other apps).
   */
  otherApp?: string;
}

/** The fields a hook fills in; the tap adds the time and the node. */
export interface ConsoleEventInput {
  type: ConsoleEventType;
  /** '' for what belongs to no app (a connection with an unknown key): shown to the operator only */
  appId: string;
  socketId?: string;
  channel?: string;
  channels?: string[];
  event?: string;
  userId?: string;
  /** an event's data, cut to DATA_CHARS */
  data?: string;
  /** what else is worth a column: code, reason, origin, status, attempt... */
  detail?: Record<string, string | number | boolean | null | undefined>;
  doctor?: Diagnosis;
  /** `stats`: this node's samples, oldest first */
  stats?: { t: number; connections: number; inPerSecond: number; outPerSecond: number }[];
  /**
   * The one console stream this is for (its id, relay.ts), when it tells a stream opened on an app
   * watched already what the others heard when they began: the node's `watching`, its samples so far.
   * Absent: for every stream of the app. The relay drops the field before a stream sees the record.
   */
  to?: string;
}

export interface ConsoleEvent extends ConsoleEventInput {
  /** ms since the epoch, on the node that saw it */
  time: number;
  node: string;
}

/**
 * One record of the console stream as it crosses the wire (an SSE `data:` line of JSON): an event, or the
 * stream's own `skipped` record (stream.ts), which has a count and no node. The page, `ripple tail` and
 * the tests read this one shape.
 */
export type ConsoleWireEvent = Omit<ConsoleEvent, 'node' | 'to'> & {
  node?: string;
  /** `skipped`: how many events were left out */
  count?: number;
};

/** Reads a console stream (Server-Sent Events) until it ends, handing each record (and its JSON as sent) to `onRecord`. */
export async function readStream(body: NonNullable<Response['body']>, onRecord: (record: ConsoleWireEvent, json: string) => void): Promise<void> {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let end;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const json = block.split('\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).join('\n');
      if (json) onRecord(JSON.parse(json) as ConsoleWireEvent, json);
    }
  }
}

/** A page shows the start of a payload; the whole one is the app's business. */
export const DATA_CHARS = 2048;

export function cut(data: string): string {
  return data.length > DATA_CHARS ? `${data.slice(0, DATA_CHARS)}…` : data;
}
