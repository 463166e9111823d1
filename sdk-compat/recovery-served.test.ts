// Issue 23 point 7: the node serves the recovery plugin's builds itself, at a path naming the plugin's
// version, so a page on another origin adds one <script> (or one import) and no npm step. In a real
// Chromium: a page from another origin loads pusher-js, then the plugin from the node, and a client
// wrapped by it gets its missed events replayed after its connection was cut. Over plain HTTP: the
// bytes are the build's, cached for good, revalidated with an ETag, and under the path prefix.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { startNode, repoRoot, type NodeHandle } from '../src/testing/harness.js';
import { launchChromium, servePages, type PageServer } from '../src/testing/browser.js';
import { rest } from '../src/testing/sign-rest.js';

const app = { id: 'served', key: 'served-key', secret: 'served-secret' };
const dist = join(repoRoot, 'recovery-plugin', 'dist');
const version = (JSON.parse(readFileSync(join(repoRoot, 'recovery-plugin', 'package.json'), 'utf8')) as { version: string }).version;

let node: NodeHandle;
let pages: PageServer | undefined;
let browser: Browser | undefined;

before(async () => {
  execFileSync(process.execPath, [join(repoRoot, 'recovery-plugin', 'scripts', 'build.mjs')], { stdio: 'inherit' });
  node = await startNode({ config: { apps: [{ ...app, recovery: { historySize: 100, historyTtl: 60 } }] } });
  const pusherJs = readFileSync(join(repoRoot, 'node_modules', 'pusher-js', 'dist', 'web', 'pusher.min.js'));
  pages = await servePages((req, res, url) => {
    if (url.pathname === '/pusher.min.js') res.writeHead(200, { 'content-type': 'text/javascript' }).end(pusherJs);
    else if (url.pathname === '/page.html') res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(page(url.searchParams.get('kind')!));
    else return false;
    return true;
  });
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await pages?.close();
  await node?.kill();
});

/** The page, on its own origin: pusher-js from there, the plugin from the node (script tag or module import). */
function page(kind: string): string {
  const plugin = `http://127.0.0.1:${node.port}/ripple-recovery/${version}`;
  const start = `
    window.seen = [];
    window.start = (withRecovery) => {
      window.pusher = withRecovery(new Pusher(${JSON.stringify(app.key)}, {
        cluster: 'mt1', wsHost: '127.0.0.1', wsPort: ${node.port}, forceTLS: false, disableStats: true, enabledTransports: ['ws'],
      }));
      window.pusher.subscribe('orders').bind('shipped', (d) => window.seen.push(d.n));
      window.pusher.connection.bind('connected', () => (window.connected = (window.connected || 0) + 1));
    };`;
  const load =
    kind === 'script'
      ? `<script src="${plugin}/ripple-recovery.min.js"></script><script>start(RippleRecovery.withRecovery);</script>`
      : `<script type="module">import { withRecovery } from '${plugin}/esm/index.js'; start(withRecovery);</script>`;
  return `<!doctype html><html><head><meta charset="utf-8"></head><body><script src="/pusher.min.js"></script><script>${start}</script>${load}</body></html>`;
}

const trigger = (n: number) => rest(node.url, app, 'POST', `/apps/${app.id}/events`, { name: 'shipped', channel: 'orders', data: JSON.stringify({ n }) });

for (const kind of ['script', 'module'] as const) {
  test(`a page on another origin loads the plugin from the node (${kind === 'script' ? 'one <script> tag' : 'one ESM import'}) and gets the events it missed while cut off`, async () => {
    const ctx = await browser!.newContext();
    const tab = await ctx.newPage();
    const errors: string[] = [];
    tab.on('pageerror', (err) => errors.push(err.message));
    await tab.goto(`http://127.0.0.1:${pages!.port}/page.html?kind=${kind}`);
    await tab.waitForFunction(() => (window as unknown as { connected?: number }).connected === 1, undefined, { timeout: 15_000 });
    await new Promise((r) => setTimeout(r, 300)); // the subscription is in
    await trigger(1);
    await tab.waitForFunction(() => (window as unknown as { seen: number[] }).seen.length === 1, undefined, { timeout: 5000 });
    // Cut off: pusher-js disconnects; two events go out meanwhile; it connects again.
    await tab.evaluate(() => (window as unknown as { pusher: { disconnect(): void } }).pusher.disconnect());
    await trigger(2);
    await trigger(3);
    await tab.evaluate(() => (window as unknown as { pusher: { connect(): void } }).pusher.connect());
    await tab.waitForFunction(() => (window as unknown as { seen: number[] }).seen.length === 3, undefined, { timeout: 10_000 }).catch(() => undefined);
    const seen = await tab.evaluate(() => (window as unknown as { seen: number[] }).seen);
    assert.deepEqual(seen, [1, 2, 3], 'the missed events replayed once each, in order');
    assert.deepEqual(errors, []);
    await ctx.close();
  });
}

test('the plugin files as built, cached for good at a versioned path, revalidated with an ETag; other versions 404', async () => {
  const base = `${node.url}/ripple-recovery/${version}`;
  for (const [path, file, type] of [
    ['ripple-recovery.min.js', 'browser/ripple-recovery.min.js', 'text/javascript'],
    ['ripple-recovery.js', 'browser/ripple-recovery.js', 'text/javascript'],
    ['esm/index.js', 'esm/index.js', 'text/javascript'],
    ['ripple-recovery.min.js.map', 'browser/ripple-recovery.min.js.map', 'application/json'],
  ] as const) {
    const res = await fetch(`${base}/${path}`);
    assert.equal(res.status, 200, path);
    assert.deepEqual(Buffer.from(await res.arrayBuffer()), readFileSync(join(dist, file)), path);
    assert.match(res.headers.get('content-type') ?? '', new RegExp(`^${type}`));
    assert.equal(res.headers.get('cache-control'), 'public, max-age=31536000, immutable');
    assert.equal(res.headers.get('access-control-allow-origin'), '*');
    const again = await fetch(`${base}/${path}`, { headers: { 'if-none-match': res.headers.get('etag')! } });
    assert.equal(again.status, 304);
  }
  assert.equal((await fetch(`${node.url}/ripple-recovery/0.0.0-other/ripple-recovery.min.js`)).status, 404);
  assert.equal((await fetch(`${base}/../../package.json`)).status, 404);

  // Under PATH_PREFIX, with the rest.
  const prefixed = await startNode({ env: { PATH_PREFIX: '/rt', LOG_LEVEL: 'info' }, config: { apps: [app] }, healthPath: '/rt/health' });
  try {
    assert.equal((await fetch(`${prefixed.url}/rt/ripple-recovery/${version}/ripple-recovery.min.js`)).status, 200);
    assert.equal((await fetch(`${prefixed.url}/ripple-recovery/${version}/ripple-recovery.min.js`)).status, 404);
    assert.ok(prefixed.output().includes(`"recoveryPlugin":"/rt/ripple-recovery/${version}/"`), 'the start log says where');
  } finally {
    await prefixed.kill();
  }
});
