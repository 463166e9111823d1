// Event-name rules for what backends and clients publish (spec §6, §9.3): the names the server speaks
// are its own, so no published event can pass for a member change, a subscription's confirmation or
// message recovery's outcome.
import { Events } from './constants.js';

const RESERVED_PREFIXES = ['pusher:', 'pusher_internal:'];

/** Why a published event may not have this name, or undefined when it may. */
export function reservedEventName(name: string): string | undefined {
  if (name === Events.recovery) return `${name} is the name of message recovery's outcome, which only the server sends (docs/recovery.md)`;
  if (RESERVED_PREFIXES.some((p) => name.startsWith(p))) return "the 'pusher' namespace is reserved for internal usage: event names cannot start with pusher: or pusher_internal:";
  return undefined;
}
