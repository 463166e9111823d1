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
}

export interface ConsoleEvent extends ConsoleEventInput {
  /** ms since the epoch, on the node that saw it */
  time: number;
  node: string;
}

/** A page shows the start of a payload; the whole one is the app's business. */
export const DATA_CHARS = 2048;

export function cut(data: string): string {
  return data.length > DATA_CHARS ? `${data.slice(0, DATA_CHARS)}…` : data;
}
