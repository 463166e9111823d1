// The plugin as published (recovery-plugin/, built here by its build script into recovery-plugin/dist):
// Node apps get withRecovery from the CommonJS build with require() and from the ESM build with import,
// and either one recovers a cut with pusher-js; the bundles load nothing else at run time; `npm pack`
// ships the builds, their declarations and the README.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { startNode, repoRoot, type NodeHandle } from '../src/testing/harness.js';
import { eventually, sleep } from '../src/testing/eventually.js';
import { Pusher, type PusherClient } from '../src/testing/pusher-js.js';
import type * as Plugin from '../recovery-plugin/src/index.js';
import { publishSteadily, sdk, CutProxies, type Tick } from './recovery-support.js';

const app = { id: 'rec-pkg', key: 'rec-pkg-key', secret: 'rec-pkg-secret' };
const pluginDir = join(repoRoot, 'recovery-plugin');
const dist = join(pluginDir, 'dist');

let node: NodeHandle;
const proxies = new CutProxies();
const clients: PusherClient[] = [];

before(async () => {
  execFileSync(process.execPath, [join(pluginDir, 'scripts', 'build.mjs')], { stdio: 'inherit' });
  node = await startNode({ config: { apps: [{ ...app, recovery: { historySize: 100, historyTtl: 60, channels: [] } }] } });
});

after(async () => {
  for (const c of clients) c.disconnect();
  await proxies.closeAll();
  await node?.kill();
});

const builds: [string, () => Promise<typeof Plugin>][] = [
  ['the CommonJS build, with require()', async () => createRequire(import.meta.url)(join(dist, 'cjs', 'index.js')) as typeof Plugin],
  ['the ESM build, with import', async () => (await import(pathToFileURL(join(dist, 'esm', 'index.js')).href)) as typeof Plugin],
];

for (const [name, load] of builds) {
  test(`${name}: withRecovery() recovers the events published while pusher-js was cut off`, async () => {
    const { withRecovery, CONTINUITY_LOST_EVENT } = await load();
    assert.equal(CONTINUITY_LOST_EVENT, 'ripple:continuity_lost');
    const proxy = await proxies.to(node);
    const pusher = withRecovery(new Pusher(app.key, { cluster: 'mt1', wsHost: '127.0.0.1', wsPort: proxy.port, forceTLS: false, disableStats: true, enabledTransports: ['ws'] }));
    clients.push(pusher);
    const channel = `pkg-${clients.length}`;
    const got: Tick[] = [];
    pusher.subscribe(channel).bind('tick', (t: Tick) => got.push(t));
    await eventually(() => pusher.channel(channel).subscribed, { timeoutMs: 5000, what: 'subscribed' });
    await sleep(100); // the outcome frame that gives the first position
    const server = sdk(node.port, app);
    await publishSteadily(server, 'p', channel, 'tick', 2, 0);
    await eventually(() => got.length >= 2, { timeoutMs: 5000, what: 'the first ticks' });
    proxy.down();
    await publishSteadily(server, 'p', channel, 'tick', 3, 0, 2);
    proxy.up();
    await eventually(() => got.length >= 5, { timeoutMs: 10_000, what: () => `the missed ticks: ${JSON.stringify(got)}` });
    await sleep(200);
    assert.deepEqual(got.map((t) => t.seq), [0, 1, 2, 3, 4]);
  });
}

test('the bundles load nothing at run time (no dependencies), and the script-tag build defines RippleRecovery.withRecovery', () => {
  const esm = readFileSync(join(dist, 'esm', 'index.js'), 'utf8');
  const cjs = readFileSync(join(dist, 'cjs', 'index.js'), 'utf8');
  assert.doesNotMatch(esm, /^\s*import\b|\bimport\(/m);
  assert.doesNotMatch(cjs, /\brequire\(/);
  const script = readFileSync(join(dist, 'browser', 'ripple-recovery.min.js'), 'utf8');
  const scope: { RippleRecovery?: { withRecovery?: unknown } } = {};
  new Function('self', 'window', 'globalThis', `${script}; this.RippleRecovery = RippleRecovery;`).call(scope, scope, scope, scope);
  assert.equal(typeof scope.RippleRecovery?.withRecovery, 'function');
});

test('npm pack ships the builds, their declarations, the README and package.json, and no source', () => {
  const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: pluginDir, encoding: 'utf8' });
  const files = (JSON.parse(out) as { files: { path: string }[] }[])[0].files.map((f) => f.path);
  for (const f of ['package.json', 'README.md', 'dist/esm/index.js', 'dist/esm/index.d.ts', 'dist/cjs/index.js', 'dist/cjs/index.d.ts', 'dist/cjs/package.json', 'dist/browser/ripple-recovery.js', 'dist/browser/ripple-recovery.min.js']) {
    assert.ok(files.includes(f), `${f} is packed: ${files.join(' ')}`);
  }
  assert.deepEqual(files.filter((f) => f.startsWith('src/') || f.startsWith('scripts/')), []);
  const pkg = JSON.parse(readFileSync(join(pluginDir, 'package.json'), 'utf8')) as { dependencies?: object; peerDependencies: Record<string, string> };
  assert.equal(pkg.dependencies, undefined);
  assert.deepEqual(pkg.peerDependencies, { 'pusher-js': '>=8.0.0' });
});
