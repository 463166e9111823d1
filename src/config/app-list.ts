// The app list: the file's apps when it lists any, otherwise one app described by the environment
// (the development app); Soketi's server-wide limits fill what an app leaves unset.
import { ConfigError } from './errors.js';
import { appFieldKind } from './env-names.js';
import type { FileApps } from './file-source.js';
import { RANK, isObject, type Gathered } from './gathered.js';
import { SOKETI_APP_ALIASES } from './soketi.js';
import { coerce } from './values.js';

/** The built-in development app: Soketi's default credentials, so Soketi client configs work unchanged. */
export const DEV_APP = { id: 'app-id', key: 'app-key', secret: 'app-secret' } as const;

export interface AppListResult {
  /** For the schema to validate (not necessarily an array when the file's list is malformed). */
  apps: unknown;
  /** The built-in development app's public secret is in use. */
  developmentSecret: boolean;
}

export function assembleApps(file: FileApps, g: Gathered): AppListResult {
  const origins = g.server.origins;
  const patchApp = (app: Record<string, unknown>, i: number, k: string, v: unknown, label: string) => {
    // Soketi reads an empty or null field as "use the default"
    if (v === null || v === '') return;
    if (k === 'host') {
      g.warnings.push(`${label}: ignored; an app has no host of its own here, every app is served on every address the node listens on`);
      return;
    }
    const f = appKey(k);
    app[f] = coerce(label, appFieldKind(f), v);
    origins.set(`apps.${i}.${f}`, label);
  };

  let apps: unknown;
  let developmentSecret = false;
  const listed = file.listed;
  if (listed) {
    apps = Array.isArray(listed.list)
      ? listed.list.map((raw, i) => {
          if (!isObject(raw)) return raw;
          const out: Record<string, unknown> = {};
          for (const [k, v] of Object.entries(raw)) patchApp(out, i, k, v, `${listed.label}.${i}.${k}`);
          return out;
        })
      : listed.list;
    if (!Array.isArray(listed.list)) origins.set('apps', listed.label);
    // Soketi applies its environment after the file: SOKETI_DEFAULT_APP_* rewrite the first app.
    for (const p of [...file.patches, ...g.soketiDefaultApp]) {
      const target = Array.isArray(apps) ? apps[p.index] : undefined;
      if (!isObject(target)) throw new ConfigError(`${p.label}: there is no app ${p.index} in ${listed.label}`);
      patchApp(target, p.index, p.key, p.value, p.label);
    }
    if (g.soketiDefaultApp.length) {
      g.notices.push(`${g.soketiDefaultApp.map((p) => p.label).join(', ')}: set on the first app of ${listed.label}, as Soketi does`);
    }
    for (const label of new Set(g.devApp.origins.values())) {
      if (!label.startsWith('SOKETI_')) g.warnings.push(`${label}: ignored; the apps come from the config file (${listed.label})`);
    }
  } else {
    for (const p of file.patches) {
      if (p.index !== 0) throw new ConfigError(`${p.label}: there is no app ${p.index} (the file lists no apps)`);
      // the same rules as for a listed app (empty means the default, a host is ignored)
      const patch: Record<string, unknown> = {};
      patchApp(patch, 0, p.key, p.value, p.label);
      for (const [f, v] of Object.entries(patch)) g.devApp.set(f, v, p.label, RANK.soketiFile);
    }
    const app: Record<string, unknown> = { ...DEV_APP, ...g.devApp.values };
    apps = [app];
    for (const [f, label] of g.devApp.origins) origins.set(`apps.0.${f}`, label);
    developmentSecret = !g.devApp.has('secret');
  }
  if (Array.isArray(apps)) {
    for (const [i, app] of apps.entries()) {
      if (!isObject(app)) continue;
      for (const [f, v] of Object.entries(g.appDefaults.values)) {
        if (app[f] !== undefined) continue;
        app[f] = v;
        origins.set(`apps.${i}.${f}`, g.appDefaults.origins.get(f)!);
      }
    }
  }
  return { apps, developmentSecret };
}

/** Soketi spells app fields in camelCase, snake_case or PascalCase (spec §11.2), and some differently. */
function appKey(key: string): string {
  const alias = SOKETI_APP_ALIASES[key];
  if (alias) return alias;
  const fromSnake = key.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
  return fromSnake.charAt(0).toLowerCase() + fromSnake.slice(1);
}
