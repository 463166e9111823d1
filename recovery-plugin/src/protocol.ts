// The wire names of ripple's message recovery (the server's docs/recovery.md), in one place.

/** The `pusher:subscribe` data field that opts a subscription in. */
export const RECOVERY_REQUEST_FIELD = 'ripple_recovery';

/** The top-level field of an event to an opted-in subscription: its position. */
export const POSITION_FIELD = 'ripple_position';

/** The frame after a recovering subscribe's replay: the outcome. */
export const OUTCOME_EVENT = 'pusher_internal:ripple_recovery';

export const SUBSCRIBE_EVENT = 'pusher:subscribe';

/** The server reads at most this many earlier socket ids from a subscribe. */
export const MAX_EARLIER_SOCKET_IDS = 16;

/**
 * What the plugin emits on a channel when events were missed and could not be replayed (the
 * outcome said `recovered: false`), with `{ reason }`: the app should refetch what it shows.
 */
export const CONTINUITY_LOST_EVENT = 'ripple:continuity_lost';
