// Channel-name rules (spec §3.1, §3.2): anchored prefix checks, in the order the spec gives.

export type ChannelKind = 'public' | 'private' | 'encrypted' | 'presence' | 'user';

export const SERVER_TO_USER_PREFIX = '#server-to-user-';

export function channelKind(name: string): ChannelKind {
  if (name.startsWith(SERVER_TO_USER_PREFIX)) return 'user';
  if (name.startsWith('presence-')) return 'presence';
  if (name.startsWith('private-encrypted-')) return 'encrypted';
  if (name.startsWith('private-')) return 'private';
  return 'public';
}

const CACHE_PREFIXES = ['cache-', 'private-cache-', 'private-encrypted-cache-', 'presence-cache-'];

export function isCacheChannel(name: string): boolean {
  return CACHE_PREFIXES.some((p) => name.startsWith(p));
}

/** Characters apps may use in channel names; '#' is reserved for server-to-user channels. */
const NAME_RE = /^[A-Za-z0-9_\-=@,.;]+$/;

/** User ids have no documented character set: any printable id the app signed in with is usable. */
const USER_ID_RE = /^[^\x00-\x1f\x7f]+$/;

export function isValidChannelName(name: string): boolean {
  if (name.startsWith(SERVER_TO_USER_PREFIX)) return USER_ID_RE.test(name.slice(SERVER_TO_USER_PREFIX.length));
  return NAME_RE.test(name);
}

/** Internal presence set of signed-in users: a user is online while signed in on at least one socket. */
export const ONLINE_CHANNEL = '#online';

/** Internal channel that carries a user's online/offline changes to the sockets watching them (spec §4.8). */
export function watchChannel(userId: string): string {
  return `#watchlist-${userId}`;
}

/** Channels of the server's own ('#'), never listed to the app (spec §3.1). */
export function isInternalChannel(name: string): boolean {
  return name.startsWith('#');
}
