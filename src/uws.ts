// The uWebSockets.js build in use. No single npm package has native binaries for every Node we
// support on every glibc, so two are installed and tried in order (package.json):
//   1. `uWebSockets.js` = @trufflesuite/uws-js-unofficial (uWS v20.30): Node 16/18/20 (ABI 93/108/115),
//      glibc >= 2.27. Its entry silently falls back to a slow pure-JS shim when the binary is missing.
//   2. @btc-vision/uwebsockets.js (uWS v20.57), an optional dependency: Node 20/22/24/25
//      (ABI 115/127/137/141), glibc >= 2.38 (Debian 13, Ubuntu 24.04 or newer).
// A candidate is used when its binary for this platform, arch and Node ABI exists and loads. When none
// does, the pure-JS shim is used (the server refuses it unless ALLOW_UWS_FALLBACK is set) and
// uwsLoadReport() says exactly what was tried and why it failed.
import { createRequire } from 'node:module';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

type UwsModule = typeof import('uWebSockets.js');

const require = createRequire(import.meta.url);

interface Candidate {
  /** The name it is installed (and required) under. */
  installName: string;
  /** Folder of the .node files, relative to the package root. */
  binaryDir: string;
  /** What supports it, for the report. */
  supports: string;
  /** The Node ABIs it ships binaries for, for the advice when it is not installed. */
  abis: readonly string[];
}

const CANDIDATES: readonly Candidate[] = [
  { installName: 'uWebSockets.js', binaryDir: 'binaries', supports: 'Node 16/18/20, glibc >= 2.27', abis: ['93', '108', '115'] },
  { installName: '@btc-vision/uwebsockets.js', binaryDir: '.', supports: 'Node 20/22/24/25, glibc >= 2.38', abis: ['115', '127', '137', '141'] },
];

export interface UwsSource {
  /** The npm package that was loaded (its real name, not the alias). */
  package: string;
  /** That package's version. */
  packageVersion: string;
  /** The uWebSockets.js release it carries (e.g. 20.57.0). */
  uwsVersion: string;
  /** The name it is installed under in node_modules. */
  installName: string;
  /** The native binary loaded, or null on the pure-JS shim. */
  binary: string | null;
  native: boolean;
}

interface Attempt {
  candidate: Candidate;
  pkg?: { name: string; version: string; root: string };
  binary?: string;
  /** Why it was not used. */
  problem?: string;
  /** For a binary that failed to load: the newest glibc symbol version it asks for. */
  needsGlibc?: string;
}

const binaryName = `uws_${process.platform}_${process.arch}_${process.versions.modules}.node`;
const attempts: Attempt[] = [];
/** Set once load() has chosen. */
let chosen: UwsSource | undefined;

function fallbackForced(): boolean {
  // The same test the trufflesuite entry makes.
  return ['true', 'True', 'TRUE', '1'].includes(process.env.UWS_USE_FALLBACK ?? '');
}

/** The installed package a candidate names: its root folder, real name and version. */
function findPackage(installName: string): { name: string; version: string; root: string } | undefined {
  let entry: string;
  try {
    entry = require.resolve(installName);
  } catch {
    return undefined;
  }
  // package.json is not always exported, so walk up from the entry to it.
  for (let dir = dirname(entry); dir !== dirname(dir); dir = dirname(dir)) {
    const file = join(dir, 'package.json');
    if (!existsSync(file)) continue;
    const meta = JSON.parse(readFileSync(file, 'utf8')) as { name?: string; version?: string };
    if (meta.name && meta.version) return { name: meta.name, version: meta.version, root: dir };
  }
  return undefined;
}

function abisIn(dir: string): string[] {
  try {
    const prefix = `uws_${process.platform}_${process.arch}_`;
    return readdirSync(dir)
      .filter((f) => f.startsWith(prefix) && f.endsWith('.node'))
      .map((f) => f.slice(prefix.length, -'.node'.length))
      .sort((a, b) => Number(a) - Number(b));
  } catch {
    return [];
  }
}

/** The newest GLIBC_x.y symbol version a shared object asks for (read from its bytes). */
function glibcNeededBy(file: string): string | undefined {
  try {
    const text = readFileSync(file).toString('latin1');
    let best: [number, number] | undefined;
    for (const m of text.matchAll(/GLIBC_(\d+)\.(\d+)/g)) {
      const v: [number, number] = [Number(m[1]), Number(m[2])];
      if (!best || v[0] > best[0] || (v[0] === best[0] && v[1] > best[1])) best = v;
    }
    return best ? `${best[0]}.${best[1]}` : undefined;
  } catch {
    return undefined;
  }
}

function isNative(mod: unknown): boolean {
  return String((mod as { App?: unknown }).App).includes('[native code]');
}

function uwsVersionOf(version: string): string {
  return /^\d+\.\d+\.\d+/.exec(version)?.[0] ?? version;
}

function load(): { mod: UwsModule; source: UwsSource } {
  if (!fallbackForced()) {
    for (const candidate of CANDIDATES) {
      const attempt: Attempt = { candidate };
      attempts.push(attempt);
      const pkg = findPackage(candidate.installName);
      if (!pkg) {
        attempt.problem = 'not installed';
        continue;
      }
      attempt.pkg = pkg;
      const dir = join(pkg.root, candidate.binaryDir);
      const binary = join(dir, binaryName);
      attempt.binary = binary;
      if (!existsSync(binary)) {
        const abis = abisIn(dir);
        attempt.problem = `has no ${binaryName} (its ${process.platform}-${process.arch} binaries are for ABI ${abis.join(', ') || 'none'})`;
        continue;
      }
      let mod: UwsModule;
      try {
        mod = require(binary) as UwsModule;
      } catch (err) {
        attempt.problem = `${binaryName} did not load: ${(err as Error).message.split('\n')[0]}`;
        attempt.needsGlibc = glibcNeededBy(binary);
        continue;
      }
      // The package's own entry adds its JS parts (e.g. DeclarativeResponse) around the same binary.
      try {
        mod = require(candidate.installName) as UwsModule;
      } catch {
        // the binary alone is the whole API we use
      }
      if (!isNative(mod)) {
        attempt.problem = `${binaryName} loaded but its App is not native code`;
        continue;
      }
      return {
        mod,
        source: { package: pkg.name, packageVersion: pkg.version, uwsVersion: uwsVersionOf(pkg.version), installName: candidate.installName, binary, native: true },
      };
    }
  }
  // Nothing native: the trufflesuite package's pure-JS shim (its entry picks it when UWS_USE_FALLBACK
  // is set; otherwise load the shim directly rather than let the entry retry the binary and warn).
  const first = CANDIDATES[0];
  const pkg = findPackage(first.installName);
  if (!pkg) throw new Error(`uWebSockets.js: no candidate package is installed (run npm install)\n${uwsLoadReport()}`);
  const mod = (fallbackForced() ? require(first.installName) : require(join(pkg.root, 'dist', 'index.js'))) as UwsModule;
  return {
    mod,
    source: { package: pkg.name, packageVersion: pkg.version, uwsVersion: uwsVersionOf(pkg.version), installName: first.installName, binary: null, native: isNative(mod) },
  };
}

/** This process's glibc version, or why it is not known. */
function glibcVersion(): string {
  try {
    const header = (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)?.header;
    if (header?.glibcVersionRuntime) return header.glibcVersionRuntime;
  } catch {
    // fall through to ldd
  }
  try {
    const out = execFileSync('ldd', ['--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 2000 });
    const m = /(\d+\.\d+)\s*$/m.exec(out.split('\n')[0]);
    if (m) return m[1];
  } catch {
    // none
  }
  return 'unknown (not glibc? musl-based systems such as Alpine are not supported)';
}

function advice(): string[] {
  const abi = process.versions.modules;
  const glibc = glibcVersion();
  const tips: string[] = [];
  if (!['linux', 'darwin', 'win32'].includes(process.platform)) tips.push(`uWebSockets.js has no build for ${process.platform}.`);
  const abiKnown = attempts.some((a) => (a.pkg ? abisIn(join(a.pkg.root, a.candidate.binaryDir)) : a.candidate.abis).includes(abi));
  if (!abiKnown) {
    tips.push(`No build has a binary for Node ${process.versions.node} (ABI ${abi}) on ${process.platform}-${process.arch}: use Node 20, 22 or 24.`);
  } else if (attempts.some((a) => !a.pkg && a.candidate.abis.includes(abi))) {
    const missing = attempts.filter((a) => !a.pkg && a.candidate.abis.includes(abi)).map((a) => a.candidate.installName);
    tips.push(`Install ${missing.join(', ')}: run \`npm install\` without --omit=optional / --no-optional (the newer build is an optional dependency).`);
  }
  const glibcFails = attempts.filter((a) => a.needsGlibc);
  if (glibcFails.length > 0) {
    const need = glibcFails.map((a) => a.needsGlibc!).sort((x, y) => Number(x.split('.')[1]) - Number(y.split('.')[1]))[0];
    tips.push(
      `The binary needs glibc >= ${need} and this system has glibc ${glibc}: run on a newer distribution (Debian 13, Ubuntu 24.04 or newer; ` +
        `the Docker image node:24-trixie-slim)${abi === '115' ? '' : ', or use Node 20, whose binary needs only glibc >= 2.27'}.`,
    );
  }
  tips.push('ALLOW_UWS_FALLBACK=1 starts the server on the slow pure-JS shim anyway (not for production).');
  return tips;
}

const loaded = load();
chosen = loaded.source;

export const uWS: UwsModule = loaded.mod;
export const uwsIsNative: boolean = loaded.source.native;
export const uwsSource: Readonly<UwsSource> = Object.freeze(loaded.source);

/**
 * What loaded and why. One line when a native build loaded; when none did, every candidate tried
 * (package, binary file, load error), this Node's ABI and glibc, and what to do.
 */
export function uwsLoadReport(): string {
  const node = `Node ${process.versions.node} (ABI ${process.versions.modules}, ${process.platform}-${process.arch})`;
  const src = chosen;
  if (src?.native) {
    return `uWebSockets.js v${src.uwsVersion} native, from ${src.package}@${src.packageVersion} (${src.binary}) on ${node}`;
  }
  const lines = [`uWebSockets.js: no native binary loaded on ${node}, glibc ${glibcVersion()}.`];
  if (fallbackForced()) lines.push('  UWS_USE_FALLBACK is set, so the native binaries were not tried.');
  for (const a of attempts) {
    const name = a.pkg ? `${a.pkg.name}@${a.pkg.version}` : a.candidate.installName;
    lines.push(`  tried ${name} (${a.candidate.supports}): ${a.problem ?? 'unknown problem'}`);
    if (a.binary) lines.push(`    file: ${a.binary}`);
    if (a.needsGlibc) lines.push(`    that binary needs glibc >= ${a.needsGlibc}`);
  }
  if (src) lines.push(`  running on: the pure-JS shim from ${src.package}@${src.packageVersion} (slow, partial).`);
  if (!fallbackForced()) for (const tip of advice()) lines.push(`  what to do: ${tip}`);
  return lines.join('\n');
}

// Said once at load, as the trufflesuite entry did, so the cause is not lost before the server logs.
if (!uwsIsNative && !fallbackForced()) console.warn(uwsLoadReport());
