// Installable like its peers: `npm pack` (prepack builds), `npm install -g` of that tarball into a
// temporary prefix, then the installed `ripple` started from an empty folder serves /health and a
// WebSocket client that subscribes and receives an event triggered through the REST API.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import PusherServer from 'pusher';
import { defaultApp as app, freePort, repoRoot } from '../../src/testing/harness.js';
import { RawClient } from '../../src/testing/raw-client.js';

const work = mkdtempSync(join(tmpdir(), 'ripple-pack-'));
const children = new Set<ChildProcess>();
after(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  rmSync(work, { recursive: true, force: true });
});

const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as {
  name: string;
  version: string;
  bin: Record<string, string>;
  dependencies: Record<string, string>;
  optionalDependencies?: Record<string, string>;
};
// Run npm with the Node running this test, from a folder that is not the repository.
const env = { ...process.env, PATH: `${dirname(process.execPath)}:${process.env.PATH ?? '/usr/bin:/bin'}` };

function npm(args: string[], cwd: string, timeoutMs: number) {
  const t0 = Date.now();
  const r = spawnSync('npm', args, { cwd, env, encoding: 'utf8', timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 });
  return { ...r, ms: Date.now() - t0, out: `${r.stdout}\n${r.stderr}` };
}

let tarball = '';
const prefix = join(work, 'prefix');

test('npm pack builds (prepack) and ships dist/src without tests, sources, maps or other folders, and the recovery plugin and console page the node serves', (t) => {
  const dest = join(work, 'pack');
  mkdirSync(dest);
  const r = npm(['pack', '--pack-destination', dest, '--json'], repoRoot, 180_000);
  assert.equal(r.status, 0, r.out);
  t.diagnostic(`npm pack (with prepack build) took ${(r.ms / 1000).toFixed(1)} s`);
  assert.match(r.stderr, /node scripts\/build-server\.mjs/, 'prepack ran the build');
  const [info] = JSON.parse(r.stdout.slice(r.stdout.indexOf('['))) as { filename: string; files: { path: string }[] }[];
  tarball = join(dest, info.filename);
  assert.ok(existsSync(tarball));
  const files = info.files.map((f) => f.path);
  for (const need of ['package.json', 'README.md', pkg.bin.ripple, 'dist/src/node.js', 'dist/src/uws.js']) {
    assert.ok(files.includes(need), `the tarball has ${need}`);
  }
  // The plugin's browser and ESM builds (with their source maps), which the node serves.
  const plugin = (f: string) => f === 'recovery-plugin/package.json' || /^recovery-plugin\/dist\/(browser\/ripple-recovery(\.min)?\.js(\.map)?|esm\/index\.js(\.map)?)$/.test(f);
  for (const need of ['recovery-plugin/dist/browser/ripple-recovery.min.js', 'recovery-plugin/dist/esm/index.js']) assert.ok(files.includes(need), `the tarball has ${need}`);
  // The debug console's page (built by scripts/build-console.mjs).
  const page = (f: string) => /^dist\/console\/(index\.html|console\.js|console\.css)$/.test(f);
  for (const need of ['dist/console/index.html', 'dist/console/console.js', 'dist/console/console.css']) assert.ok(files.includes(need), `the tarball has ${need}`);
  const stray = files.filter(
    (f) => !plugin(f) && !page(f) && (!(f === 'package.json' || f === 'README.md' || /^LICENSE/.test(f) || f.startsWith('dist/src/')) || /\.test\.js$|\.map$|\.ts$|\.build\.json$/.test(f)),
  );
  assert.deepEqual(stray, [], 'nothing but dist/src, the plugin build, the console page, package.json, README and LICENSE');
  assert.deepEqual(files.filter((f) => f.startsWith('dist/src/testing/')), [], 'test support is not shipped');
  // Every compiled source module is in it (a stale or missing file would break the installed bin).
  const srcModules = (dir: string): string[] =>
    readdirSync(join(repoRoot, dir), { withFileTypes: true }).flatMap((e) =>
      e.isDirectory()
        ? e.name === 'testing' || join(dir, e.name) === join('src', 'console', 'page') ? [] : srcModules(join(dir, e.name))
        : e.name.endsWith('.ts') && !e.name.endsWith('.test.ts') && !e.name.endsWith('.d.ts') ? [join(dir, e.name)] : [], // a .d.ts is types only: no module
    );
  for (const m of srcModules('src')) assert.ok(files.includes(`dist/${m.replace(/\.ts$/, '.js')}`), `dist/${m} is shipped`);
});

test('npm install -g of the tarball into a temporary prefix: the bin is linked and the uWS binaries are present', (t) => {
  assert.ok(tarball, 'the pack step produced a tarball');
  const r = npm(['install', '-g', '--prefix', prefix, tarball, '--no-audit', '--no-fund'], work, 300_000);
  assert.equal(r.status, 0, r.out);
  t.diagnostic(`npm install -g took ${(r.ms / 1000).toFixed(1)} s`);
  const bin = join(prefix, 'bin', 'ripple');
  assert.ok(lstatSync(bin).isSymbolicLink() || lstatSync(bin).isFile(), `${bin} exists`);
  const installed = join(prefix, 'lib', 'node_modules', pkg.name);
  assert.equal(realpathSync(bin), join(installed, pkg.bin.ripple));
  assert.equal(readFileSync(realpathSync(bin), 'utf8').split('\n')[0], '#!/usr/bin/env node');
  // Production dependencies only.
  for (const dev of ['typescript', 'tsx', 'pusher', 'pusher-js']) assert.ok(!existsSync(join(installed, 'node_modules', dev)), `no devDependency ${dev}`);
  for (const dep of Object.keys(pkg.dependencies)) assert.ok(existsSync(join(installed, 'node_modules', dep)), `dependency ${dep}`);
  // Both uWS builds arrive with their native binaries (no install script is involved).
  const abi = process.versions.modules;
  const native = `uws_${process.platform}_${process.arch}_${abi}.node`;
  assert.ok(existsSync(join(installed, 'node_modules', 'uWebSockets.js', 'binaries', native)), `trufflesuite ${native}`);
  for (const opt of Object.keys(pkg.optionalDependencies ?? {})) {
    const dir = join(installed, 'node_modules', opt);
    assert.ok(existsSync(dir), `optional dependency ${opt}`);
    assert.ok(readdirSync(dir).some((f) => /^uws_linux_x64_\d+\.node$/.test(f)), `${opt} has its linux-x64 binaries`);
  }
});

test('the installed `ripple`, started from an empty folder, serves /health and a WebSocket subscribe + REST trigger', async () => {
  assert.ok(existsSync(join(prefix, 'bin', 'ripple')), 'the install step linked the bin');
  const empty = mkdtempSync(join(work, 'empty-'));
  const port = await freePort();
  const child = spawn(join(prefix, 'bin', 'ripple'), [], {
    cwd: empty,
    // Only the installed package: no repository, no NODE_PATH, no tsx loader.
    env: { PATH: `${dirname(process.execPath)}:/usr/bin:/bin`, HOME: empty, PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  let client: RawClient | undefined;
  try {
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (child.exitCode !== null) assert.fail(`ripple exited ${child.exitCode}:\n${out}`);
      const res = await fetch(`http://127.0.0.1:${port}/health`).catch(() => undefined);
      if (res?.status === 200) {
        assert.deepEqual(await res.json(), { ok: true });
        break;
      }
      if (Date.now() > deadline) assert.fail(`no /health within 30 s:\n${out}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.match(out, new RegExp(`ripple listening on 127\\.0\\.0\\.1:${port}  app_id=${app.id} key=${app.key}`));
    assert.deepEqual(readdirSync(empty), [], 'the server wrote nothing into its working folder');
    const pluginVersion = (JSON.parse(readFileSync(join(repoRoot, 'recovery-plugin', 'package.json'), 'utf8')) as { version: string }).version;
    assert.equal((await fetch(`http://127.0.0.1:${port}/ripple-recovery/${pluginVersion}/ripple-recovery.min.js`)).status, 200, 'the installed node serves the recovery plugin');

    client = await RawClient.connect(port, app.key);
    assert.match(client.socketId, /^\d+\.\d+$/);
    client.send({ event: 'pusher:subscribe', data: { channel: 'installed' } });
    await client.nextEvent('pusher_internal:subscription_succeeded', 'installed');
    const pusher = new PusherServer({ appId: app.id, key: app.key, secret: app.secret, host: '127.0.0.1', port: String(port), useTLS: false });
    assert.equal((await pusher.trigger('installed', 'hello', { from: 'npm install -g' })).status, 200);
    const got = await client.nextEvent('hello', 'installed');
    assert.deepEqual(JSON.parse(got.data as string), { from: 'npm install -g' });
    await client.close();
    client = undefined;

    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    const exit = await exited;
    clearTimeout(timer);
    assert.deepEqual(exit, { code: 0, signal: null }, out);
  } finally {
    if (client) await client.close().catch(() => undefined);
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
    children.delete(child);
  }
});
