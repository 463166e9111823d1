// Where apps come from: the one interface every part of the node looks apps up through, and follows
// when they change (style.md: a small app provider, Reverb's ApplicationProvider). The static store
// (config file and environment) answers at once; a store backed by a database answers from memory
// when it can and asks its source otherwise, which is why a lookup may be a promise.
import type { App } from './app.js';

export type Found = App | undefined;
/** A lookup's answer: the app (or undefined) at once, or a promise of it when the store must ask its source. */
export type Lookup = Found | Promise<Found>;

export type AppChange =
  /** A new app: connections and REST calls with its key and id are accepted from now on. */
  | { kind: 'added'; app: App }
  /** Settings changed (secret, limits, webhooks, flags); `previous` is what the node used until now. */
  | { kind: 'updated'; app: App; previous: App }
  /** The app exists but is disabled: new connections are refused (4003) and live ones closed. */
  | { kind: 'disabled'; app: App; previous: App }
  /** The app is gone. */
  | { kind: 'removed'; previous: App };

export type AppChangeListener = (change: AppChange) => void;

export interface AppStore {
  findByKey(key: string): Lookup;
  findById(id: string): Lookup;
  /** Every app the store holds now (a caching store: the ones it has loaded). */
  all(): readonly App[];
  /** Heard after every change, in order, on this node. */
  onChange(listener: AppChangeListener): void;
}

/** Calls `then` with the app now when the lookup answered at once, else when its promise settles. */
export function whenFound(found: Lookup, then: (app: Found) => void, failed: (err: unknown) => void): void {
  if (found instanceof Promise) found.then(then, failed);
  else then(found);
}
