// Pusher protocol strings and codes (spec §1-§8). Nothing else in the code base spells them.

export const Events = {
  connectionEstablished: 'pusher:connection_established',
  error: 'pusher:error',
  ping: 'pusher:ping',
  pong: 'pusher:pong',
  subscribe: 'pusher:subscribe',
  unsubscribe: 'pusher:unsubscribe',
  signin: 'pusher:signin',
  signinSuccess: 'pusher:signin_success',
  subscriptionError: 'pusher:subscription_error',
  cacheMiss: 'pusher:cache_miss',
  subscriptionSucceeded: 'pusher_internal:subscription_succeeded',
  memberAdded: 'pusher_internal:member_added',
  memberRemoved: 'pusher_internal:member_removed',
  subscriptionCount: 'pusher_internal:subscription_count',
  watchlistEvents: 'pusher_internal:watchlist_events',
  /** ripple's message recovery (docs/recovery.md): the outcome of a recovering subscribe. */
  recovery: 'pusher_internal:ripple_recovery',
} as const;

/** `pusher:subscribe` data field by which a subscription opts in to message recovery (docs/recovery.md). */
export const RECOVERY_REQUEST_FIELD = 'ripple_recovery';

export const CLIENT_EVENT_PREFIX = 'client-';

/** Close and error codes (spec §2). */
export const Codes = {
  appNotFound: 4001,
  appDisabled: 4003,
  overConnectionQuota: 4004,
  pathNotFound: 4005,
  unsupportedProtocol: 4007,
  unauthorized: 4009,
  overCapacity: 4100,
  reconnectNow: 4200,
  pongNotReceived: 4201,
  clientEventRejected: 4301,
  serverError: 4302,
} as const;

export const SUPPORTED_PROTOCOL_MIN = 4;
export const SUPPORTED_PROTOCOL_MAX = 7;
