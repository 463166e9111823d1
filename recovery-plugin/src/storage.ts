// Where positions and earlier socket ids outlive the page (option `storage`), so a reload within the
// server's history window recovers too. Keys carry the app key and the channel name, not the page: a
// storage holds one client's state, so it must belong to one tab (sessionStorage does: a reloaded tab
// finds its own entries there, and no other tab's).
import { formatPosition, parsePosition, type Position } from './position.js';

/** The part of the Web Storage interface the plugin uses (sessionStorage, localStorage, or your own). */
export interface StorageLike {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

export type StorageOption = 'session' | StorageLike;

/** The positions and socket ids of one app, kept in a StorageLike, or nowhere. */
export class RecoveryStore {
  private readonly prefix: string;

  private constructor(
    private readonly storage: StorageLike | undefined,
    appKey: string,
  ) {
    this.prefix = `ripple-recovery/${appKey}/`;
  }

  static open(option: StorageOption | undefined, appKey: string): RecoveryStore {
    // Only a page has a localStorage worth comparing (recent Node versions warn when theirs is read).
    if (typeof option === 'object' && 'window' in globalThis && option === browserStorage('localStorage')) {
      throw new Error(
        "withRecovery: storage must belong to one tab, and localStorage is shared by every tab of the site: a reloaded tab would resume from another tab's positions and skip what it missed. Use storage: 'session'",
      );
    }
    return new RecoveryStore(option === 'session' ? sessionStorageOrThrow() : option, appKey);
  }

  position(channel: string): Position | undefined {
    return parsePosition(this.read(`channel/${channel}`));
  }

  savePosition(channel: string, position: Position | undefined): void {
    if (position) this.write(`channel/${channel}`, formatPosition(position));
    else this.remove(`channel/${channel}`);
  }

  socketIds(): string[] {
    try {
      const ids: unknown = JSON.parse(this.read('socket-ids') ?? '[]');
      return Array.isArray(ids) ? ids.filter((id): id is string => typeof id === 'string') : [];
    } catch {
      return [];
    }
  }

  saveSocketIds(ids: readonly string[]): void {
    this.write('socket-ids', JSON.stringify(ids));
  }

  // Storage is a convenience on top of the in-memory state: a full or refused storage (quota, Safari's
  // private mode, a sandboxed frame) must not break the connection, so its errors are dropped.
  private read(key: string): string | null {
    if (!this.storage) return null;
    try {
      return this.storage.getItem(this.prefix + key);
    } catch {
      return null;
    }
  }

  private write(key: string, value: string): void {
    try {
      this.storage?.setItem(this.prefix + key, value);
    } catch {
      // see read()
    }
  }

  private remove(key: string): void {
    try {
      this.storage?.removeItem(this.prefix + key);
    } catch {
      // see read()
    }
  }
}

function browserStorage(name: 'sessionStorage' | 'localStorage'): StorageLike | undefined {
  try {
    return (globalThis as Record<string, unknown>)[name] as StorageLike | undefined;
  } catch {
    // reading window.sessionStorage throws where the page may not use it (sandboxed frames)
    return undefined;
  }
}

function sessionStorageOrThrow(): StorageLike {
  const storage = browserStorage('sessionStorage');
  if (!storage) throw new Error("withRecovery: storage 'session' needs window.sessionStorage, which this runtime does not have; pass a Storage-like object instead");
  return storage;
}
