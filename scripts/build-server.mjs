// Builds what the server runs, and only that: src/ without its tests and test support, to dist/src
// (the layout tsc would give, so `dist/src/cli.js` is the entry point either way), and the recovery
// plugin's browser builds that the node serves (recovery-plugin/dist, by its own build script), and
// the debug console's page (dist/console, by build-console.mjs).
// esbuild strips the types file by file; type checking is `npm run typecheck`'s job, not the start's.
// Each part is rebuilt only when one of its sources is newer than its last build, so a start with
// nothing changed costs a directory walk.
// Run from anywhere: `node scripts/build-server.mjs` (`npm start` and `npm run build` run it).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildConsolePage } from './build-console.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'dist');
const stampFile = join(out, 'src', '.build.json');

/** Files under `dir` (recursively) for which `keep` says yes, with their modification times. */
function walk(dir, keep, found = []) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) walk(path, keep, found);
    else if (keep(path)) found.push({ path, mtimeMs: statSync(path).mtimeMs });
  }
  return found;
}

const serverSource = (path) => {
  const rel = relative(join(root, 'src'), path);
  // console/page/ is the browser's (build-console.mjs bundles it)
  return rel.endsWith('.ts') && !rel.endsWith('.test.ts') && !rel.startsWith('testing/') && !rel.startsWith('console/page/') && !rel.endsWith('.d.ts');
};

/** The server: rebuilt when a source is newer than the last build, or the set of sources changed. */
async function buildServer() {
  const sources = walk(join(root, 'src'), serverSource);
  const names = sources.map((s) => relative(root, s.path)).sort();
  let stamp;
  try {
    stamp = JSON.parse(readFileSync(stampFile, 'utf8'));
  } catch {
    stamp = undefined;
  }
  const newest = Math.max(...sources.map((s) => s.mtimeMs));
  if (stamp && stamp.builtAt >= newest && JSON.stringify(stamp.sources) === JSON.stringify(names)) return false;
  const { build } = await import('esbuild');
  // A removed source must not leave its old output behind.
  rmSync(join(out, 'src'), { recursive: true, force: true });
  const builtAt = Date.now();
  await build({
    absWorkingDir: root,
    entryPoints: names,
    outbase: '.',
    outdir: out,
    bundle: false,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    sourcemap: true,
    logLevel: 'warning',
  });
  mkdirSync(dirname(stampFile), { recursive: true });
  writeFileSync(stampFile, JSON.stringify({ builtAt, sources: names }));
  return true;
}

/** The recovery plugin's builds, by its own script, when one of its sources is newer than them. */
function buildRecoveryPlugin() {
  const plugin = join(root, 'recovery-plugin');
  if (!existsSync(join(plugin, 'scripts', 'build.mjs'))) return false;
  const built = join(plugin, 'dist', 'browser', 'ripple-recovery.min.js');
  const inputs = ['src', 'scripts'].flatMap((d) => walk(join(plugin, d), () => true));
  const sources = [...inputs, ...['package.json', 'tsconfig.json'].map((f) => ({ mtimeMs: statSync(join(plugin, f)).mtimeMs }))];
  if (existsSync(built) && statSync(built).mtimeMs >= Math.max(...sources.map((s) => s.mtimeMs))) return false;
  const r = spawnSync(process.execPath, [join(plugin, 'scripts', 'build.mjs')], { stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
  return true;
}

const t0 = Date.now();
const server = await buildServer();
const plugin = buildRecoveryPlugin();
const page = await buildConsolePage();
if (server || plugin || page) console.error(`built ${[server && 'the server', plugin && 'the recovery plugin', page && 'the console page'].filter(Boolean).join(', ')} in ${Date.now() - t0} ms`);
