// The config file: ripple's own keys and Soketi's (nested objects or dotted paths), read into the
// gathered settings. Its app list is returned for apps.ts to assemble.
import { readFileSync } from 'node:fs';
import { ConfigError } from './errors.js';
import { closest, schemaKind } from './env-names.js';
import { RANK, isObject, type AppPatch, type Gathered } from './gathered.js';
import { ConfigSchema } from './schema.js';
import { SOKETI_APPS_PATH, appFieldOf, soketiKind, soketiLeaves, soketiPaths } from './soketi.js';
import { coerce } from './values.js';

export const RIPPLE_KEYS = new Set(Object.keys(ConfigSchema.shape));

/** An app list as the file wrote it, and the key it was under. */
export interface AppList {
  list: unknown;
  label: string;
}

export interface FileApps {
  /** The file's app list (ripple's `apps`, else Soketi's `appManager.array.apps`), if it has one. */
  listed?: AppList;
  /** Soketi paths into one app's fields (`appManager.array.apps.0.max_connections`). */
  patches: AppPatch[];
}

export function readConfigFile(path: string | undefined, g: Gathered): FileApps {
  const file = path ? parseFile(path) : {};
  let rippleApps: AppList | undefined;
  let soketiApps: AppList | undefined;
  const patches: AppPatch[] = [];
  const unknown: string[] = [];
  for (const [k, v] of Object.entries(file)) {
    // ripple's own keys; Soketi's `webhooks: {batching}` shares a name with ours
    if (RIPPLE_KEYS.has(k) && !(k === 'webhooks' && isObject(v) && 'batching' in v)) {
      if (k === 'apps') rippleApps = { list: v, label: 'apps' };
      // field by field, so that a field the file leaves out can come from another source
      else if (k === 'appStore' && isObject(v)) for (const [f, x] of Object.entries(v)) g.server.set(`appStore.${f}`, x, `appStore.${f}`, RANK.file);
      else g.server.set(k, coerce(k, schemaKind(ConfigSchema.shape, k), v), k, RANK.file);
      continue;
    }
    const found = soketiLeaves(k, v);
    unknown.push(...found.unknown);
    for (const [p, value] of found.leaves) {
      const field = appFieldOf(p);
      if (p === SOKETI_APPS_PATH) soketiApps = { list: value, label: p };
      else if (field) patches.push({ index: field.index, key: field.field, value, label: p });
      else g.soketi.push({ path: p, value: coerce(p, soketiKind(p), value), label: p, rank: RANK.soketiFile });
    }
  }
  if (unknown.length) {
    const lines = unknown.map((u) => {
      const near = closest(u, [...RIPPLE_KEYS, ...soketiPathsFor(u)], 3);
      return `  ${u}: unknown setting${near ? ` (did you mean ${near}?)` : ''}`;
    });
    throw new ConfigError(`invalid configuration in ${path}:\n${lines.join('\n')}`);
  }
  if (rippleApps && soketiApps) g.warnings.push(`${soketiApps.label}: ignored; the file's "apps" list is used`);
  return { listed: rippleApps ?? soketiApps, patches };
}

function parseFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`config file ${path}: ${(err as Error).message}`);
  }
  let file: unknown;
  try {
    file = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`config file ${path}: not valid JSON (${(err as Error).message})`);
  }
  if (!isObject(file)) throw new ConfigError(`config file ${path}: must hold a JSON object`);
  return file;
}

/** Soketi paths to suggest for an unknown one: those sharing its first segment, or top-level names. */
function soketiPathsFor(unknownPath: string): string[] {
  const first = unknownPath.split('.')[0];
  const all = soketiPaths.filter((p) => !p.startsWith(`${SOKETI_APPS_PATH}.`));
  const same = all.filter((p) => p.split('.')[0] === first);
  return same.length ? same : [...new Set(all.map((p) => p.split('.')[0]))];
}
