// Reading deploy/: YAML documents, the Dockerfile's stages, the environment names the server reads,
// and a production-only node_modules, for deploy/tests/deploy-files.test.ts.
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { repoRoot } from '../../../src/testing/harness.js';
import { rippleEnvNames } from '../../../src/config/env-names.js';

export const deployDir = join(repoRoot, 'deploy');

/** Files under `dir` (recursively) whose names end with one of `exts`. */
export function filesUnder(dir: string, exts: string[]): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...filesUnder(p, exts));
    else if (exts.some((e) => name.endsWith(e))) out.push(p);
  }
  return out.sort();
}

/** Every document of a YAML file as plain JS; YAML 1.1 merge keys (`<<`) as Compose reads them. Throws on any error. */
export function yamlDocs(path: string): unknown[] {
  const docs = parseAllDocuments(readFileSync(path, 'utf8'), { merge: true, prettyErrors: true });
  const list = Array.isArray(docs) ? docs : [];
  const problems = list.flatMap((d) => [...d.errors, ...d.warnings].map((e) => e.message));
  if (problems.length) throw new Error(`${relative(repoRoot, path)}: ${problems.join('; ')}`);
  return list.map((d) => d.toJS()).filter((d) => d !== null && d !== undefined);
}

/** Names the config loader reads from the environment under ripple's own spelling (src/config/env-names.ts). */
export function serverEnvNames(): Set<string> {
  return new Set(rippleEnvNames);
}

/** Compose-style interpolation: `${NAME:-default}` / `${NAME-default}` become the default, `${NAME}` empty. */
export function composeDefaults(value: string): string {
  return value.replace(/\$\{[A-Za-z_][A-Za-z0-9_]*(?::?-([^}]*))?\}/g, (_m, def: string | undefined) => def ?? '');
}

export interface DockerInstruction {
  cmd: string;
  args: string;
}
export interface DockerStage {
  from: string;
  name?: string;
  instructions: DockerInstruction[];
}

/** Stages of a Dockerfile (continuations joined, comments dropped, ARG defaults before FROM applied). */
export function parseDockerfile(text: string): DockerStage[] {
  const logical: string[] = [];
  let acc = '';
  for (const raw of text.split('\n')) {
    if (/^\s*#/.test(raw)) continue;
    const line = raw.replace(/\s+$/, '');
    if (line.endsWith('\\')) {
      acc += line.slice(0, -1) + ' ';
      continue;
    }
    acc += line;
    if (acc.trim()) logical.push(acc.trim());
    acc = '';
  }
  const args: Record<string, string> = {};
  const stages: DockerStage[] = [];
  for (const l of logical) {
    const m = /^(\S+)\s*(.*)$/.exec(l)!;
    const cmd = m[1].toUpperCase();
    const rest = m[2];
    if (cmd === 'ARG' && stages.length === 0) {
      const [k, v] = rest.split('=');
      if (v !== undefined) args[k] = v;
      continue;
    }
    if (cmd === 'FROM') {
      const fm = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(rest)!;
      const from = fm[1].replace(/\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?/g, (_x, k: string) => args[k] ?? '');
      stages.push({ from, name: fm[2], instructions: [] });
      continue;
    }
    if (stages.length === 0) throw new Error(`Dockerfile: ${cmd} before FROM`);
    stages[stages.length - 1].instructions.push({ cmd, args: rest });
  }
  return stages;
}

/** `KEY=value KEY2=value2` of an ENV instruction (the legacy `ENV KEY value` form too). */
export function dockerEnv(args: string): Record<string, string> {
  if (!args.includes('=')) {
    const [k, ...v] = args.split(/\s+/);
    return { [k]: v.join(' ') };
  }
  const out: Record<string, string> = {};
  for (const m of args.matchAll(/([A-Za-z_][A-Za-z0-9_]*)=("([^"]*)"|\S*)/g)) out[m[1]] = m[3] ?? m[2];
  return out;
}

/** A COPY: `--from=<stage>`, sources, destination (JSON array form too). */
export function dockerCopy(args: string): { from?: string; sources: string[]; dest: string } {
  const flags = [...args.matchAll(/--([a-z-]+)=(\S+)/g)];
  const rest = args.replace(/--[a-z-]+=\S+\s*/g, '').trim();
  const parts: string[] = rest.startsWith('[') ? JSON.parse(rest) : rest.split(/\s+/);
  return { from: flags.find((f) => f[1] === 'from')?.[2], sources: parts.slice(0, -1), dest: parts[parts.length - 1] };
}

/** A .dockerignore's patterns as a predicate on context-relative paths (last matching rule wins). */
export function dockerIgnore(text: string): (path: string) => boolean {
  const rules = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => {
      const negate = l.startsWith('!');
      const pat = (negate ? l.slice(1) : l).replace(/^\/+/, '').replace(/\/+$/, '');
      let re = '';
      for (let i = 0; i < pat.length; i++) {
        const c = pat[i];
        if (c === '*' && pat[i + 1] === '*') {
          re += '.*';
          i++;
          if (pat[i + 1] === '/') i++;
        } else if (c === '*') re += '[^/]*';
        else if (c === '?') re += '[^/]';
        else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
      }
      // A pattern naming a directory covers everything under it.
      return { negate, re: new RegExp(`^${re}(/.*)?$`) };
    });
  return (path: string) => {
    let ignored = false;
    for (const r of rules) if (r.re.test(path)) ignored = !r.negate;
    return ignored;
  };
}

/** Copies a context path into `dest`, leaving out what the ignore file excludes. */
export function copyFromContext(context: string, source: string, dest: string, ignored: (p: string) => boolean): number {
  const abs = join(context, source);
  if (!existsSync(abs)) throw new Error(`COPY ${source}: not in the build context`);
  let n = 0;
  const walk = (rel: string, to: string) => {
    const from = join(context, rel);
    if (statSync(from).isDirectory()) {
      mkdirSync(to, { recursive: true });
      for (const name of readdirSync(from)) walk(join(rel, name), join(to, name));
    } else if (!ignored(rel)) {
      cpSync(from, to);
      n++;
    }
  };
  if (ignored(source) && !statSync(abs).isDirectory()) throw new Error(`COPY ${source}: excluded by the .dockerignore`);
  walk(source, dest);
  return n;
}

/**
 * What `npm ci --omit=dev` installs, taken from the repository's installed node_modules: every
 * package-lock entry not marked dev (optional ones only where installed on this platform).
 */
export function copyProductionModules(destNodeModules: string): string[] {
  const lock = JSON.parse(readFileSync(join(repoRoot, 'package-lock.json'), 'utf8')) as {
    packages: Record<string, { dev?: boolean; optional?: boolean }>;
  };
  const copied: string[] = [];
  for (const [key, meta] of Object.entries(lock.packages)) {
    if (!key.startsWith('node_modules/') || meta.dev) continue;
    const src = join(repoRoot, key);
    if (!existsSync(src)) {
      if (meta.optional) continue;
      throw new Error(`production dependency ${key} is not installed: run npm ci`);
    }
    const dest = join(destNodeModules, key.slice('node_modules/'.length));
    // Nested entries (a/node_modules/b) are copied with their parent; copying again is harmless.
    cpSync(src, dest, { recursive: true, dereference: true });
    copied.push(key.slice('node_modules/'.length));
  }
  return copied;
}
