// ripple-recovery: message recovery for stock pusher-js 8 and Laravel Echo apps on a ripple server.
export { withRecovery, type RecoveryOptions, type ContinuityLost } from './with-recovery.js';
export type { StorageLike } from './storage.js';
export type { PusherLike } from './pusher-shape.js';
export { CONTINUITY_LOST_EVENT } from './protocol.js';
