// What the configuration sources (file, environment, command line) gather before validation: values
// by dotted path, each kept from the highest-ranked source that set it, with the name the user wrote
// it by, so that an error or a warning names the setting as the user wrote it.
import type { SoketiEntry } from './soketi.js';

/** Precedence of a source: higher wins (see load.ts). */
export const RANK = { soketiFile: 0, file: 1, soketiEnv: 2, env: 3, cli: 4 } as const;

/** Values by dotted path, each kept from the highest-ranked source that set it, with the name it was set by. */
export class Layered {
  readonly values: Record<string, unknown> = {};
  private readonly ranks = new Map<string, number>();
  constructor(readonly origins: Map<string, string>) {}

  set(path: string, value: unknown, label: string, rank: number): void {
    if (value === undefined) return;
    const prev = this.ranks.get(path);
    if (prev !== undefined && prev > rank) return;
    this.ranks.set(path, rank);
    this.origins.set(path, label);
    const parts = path.split('.');
    let obj = this.values;
    for (const p of parts.slice(0, -1)) {
      const next = obj[p];
      obj = obj[p] = next && typeof next === 'object' && !Array.isArray(next) ? { ...next } : {};
    }
    obj[parts.at(-1)!] = value;
  }
  rank(path: string): number | undefined {
    return this.ranks.get(path);
  }
  has(path: string): boolean {
    return this.ranks.has(path);
  }
  delete(path: string): void {
    this.ranks.delete(path);
    delete this.values[path];
  }
}

/** One field of a listed app set by a Soketi path (`appManager.array.apps.0.max_connections`) or a default-app variable. */
export interface AppPatch {
  index: number;
  key: string;
  value: unknown;
  label: string;
}

export interface Gathered {
  /** Server settings; its origins map holds every internal path's user-facing name (`apps.0.maxConnections` too). */
  server: Layered;
  /** Soketi's server-wide app limits: every app's default for a field it does not set. */
  appDefaults: Layered;
  /** The development app's fields, from the environment (APP_*, SOKETI_DEFAULT_APP_*). */
  devApp: Layered;
  /**
   * SOKETI_DEFAULT_APP_* as fields of app 0: Soketi sets them over the config file's first app when
   * the file lists apps (its environment is applied after the file).
   */
  soketiDefaultApp: AppPatch[];
  /** Soketi settings, mapped together once every source is read (soketi.ts). */
  soketi: SoketiEntry[];
  warnings: string[];
  notices: string[];
}

export function gathered(): Gathered {
  return {
    server: new Layered(new Map()),
    appDefaults: new Layered(new Map()),
    devApp: new Layered(new Map()),
    soketiDefaultApp: [],
    soketi: [],
    warnings: [],
    notices: [],
  };
}

export function isObject(v: unknown): v is Record<string, unknown> {
  return !!v && typeof v === 'object' && !Array.isArray(v);
}
