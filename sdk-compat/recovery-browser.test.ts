// Message recovery in a real Chromium (playwright-core, the system /usr/bin/chromium; never a downloaded
// browser) with pusher-js's browser bundle and the plugin as built for browsers by
// recovery-plugin/scripts/build.mjs (run here, into recovery-plugin/dist): the script-tag build
// (`RippleRecovery.withRecovery`) and the ESM build. Two nodes share a Redis and both publish; the
// page's connection is cut and moved to the other node, its node is restarted, and the page is
// reloaded with storage 'session', also while a second tab of the site stays connected.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { startNode, startRedis, repoRoot, type NodeHandle, type RedisHandle } from '../src/testing/harness.js';
import { launchChromium, servePages, type PageServer } from '../src/testing/browser.js';
import { assertEachOnceInOrder, publishSteadily, sdk, CutProxies, type CutProxy, type Tick } from './recovery-support.js';

const app = { id: 'rec-web', key: 'rec-web-key', secret: 'rec-web-secret' };
const recovery = { historySize: 2000, historyTtl: 120, channels: [{ prefix: 'small-', historySize: 3 }] };
const dist = join(repoRoot, 'recovery-plugin', 'dist');

let redis: RedisHandle;
const nodes: NodeHandle[] = [];
const proxies = new CutProxies();
let http: PageServer | undefined;
let httpPort: number;
let browser: Browser | undefined;

// The page: subscribes to the channels named in its query string through the plugin, and records on
// window what the app sees. `start` is called by the script-tag or the module loader below it.
const appScript = `
  window.ticks = {};
  window.lost = {};
  window.connections = 0;
  window.start = (withRecovery) => {
    const q = new URLSearchParams(location.search);
    const storage = q.get('storage');
    let pusher;
    try {
      pusher = withRecovery(new Pusher(${JSON.stringify(app.key)}, {
        cluster: 'mt1', wsHost: '127.0.0.1', wsPort: Number(q.get('ws')), forceTLS: false,
        disableStats: true, enabledTransports: ['ws'],
      }), storage === 'local' ? { storage: localStorage } : storage ? { storage: 'session' } : {});
    } catch (err) {
      window.wrapError = err.message;
      return;
    }
    pusher.connection.bind('connected', () => {
      window.connections++;
      window.socketId = pusher.connection.socket_id;
    });
    for (const name of q.get('channels').split(',')) {
      window.ticks[name] = [];
      window.lost[name] = [];
      const channel = pusher.subscribe(name);
      channel.bind('tick', (t) => window.ticks[name].push(t));
      channel.bind('ripple:continuity_lost', (l) => window.lost[name].push(l));
    }
  };`;
const pages: Record<string, string> = {
  '/script-tag.html': `<script src="/pusher.min.js"></script><script src="/ripple-recovery.min.js"></script><script>${appScript} start(RippleRecovery.withRecovery);</script>`,
  '/module.html': `<script src="/pusher.min.js"></script><script>${appScript}</script><script type="module">import { withRecovery } from '/esm/index.js'; start(withRecovery);</script>`,
};

const clusterNode = (id: string, port?: number) => startNode({ env: { REDIS_URL: redis.url, NODE_ID: id }, config: { apps: [{ ...app, recovery }] }, port });

before(async () => {
  execFileSync(process.execPath, [join(repoRoot, 'recovery-plugin', 'scripts', 'build.mjs')], { stdio: 'inherit' });
  const files: Record<string, Buffer> = {
    '/pusher.min.js': readFileSync(join(repoRoot, 'node_modules', 'pusher-js', 'dist', 'web', 'pusher.min.js')),
    '/ripple-recovery.min.js': readFileSync(join(dist, 'browser', 'ripple-recovery.min.js')),
    '/esm/index.js': readFileSync(join(dist, 'esm', 'index.js')),
  };
  redis = await startRedis();
  nodes.push(...(await Promise.all(['web-a', 'web-b'].map((id) => clusterNode(id)))));
  http = await servePages((req, res, url) => {
    const path = url.pathname;
    if (pages[path]) res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(`<!doctype html><html><head><meta charset="utf-8"></head><body>${pages[path]}</body></html>`);
    else if (files[path]) res.writeHead(200, { 'content-type': 'application/javascript' }).end(files[path]);
    else return false;
    return true;
  });
  httpPort = http.port;
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await proxies.closeAll();
  await http?.close();
  await Promise.all(nodes.map((n) => n.kill()));
  await redis?.stop();
});

interface PageState {
  ticks: Record<string, Tick[]>;
  lost: Record<string, { reason: string }[]>;
  connections: number;
  socketId?: string;
  wrapError?: string;
}

const state = (tab: Page): Promise<PageState> =>
  tab.evaluate(() => {
    const w = window as unknown as PageState;
    return { ticks: w.ticks, lost: w.lost, connections: w.connections, socketId: w.socketId, wrapError: w.wrapError };
  });

async function until(tab: Page, what: string, check: (s: PageState) => boolean, timeoutMs = 15_000): Promise<PageState> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const s = await state(tab);
    if (check(s)) return s;
    if (Date.now() > deadline) throw new Error(`not within ${timeoutMs} ms: ${what}: ${JSON.stringify({ connections: s.connections, lost: s.lost, ticks: Object.fromEntries(Object.entries(s.ticks ?? {}).map(([k, v]) => [k, v.length])) })}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Opens the page in a new browser context, or as another tab of `context` (the same site's storage). */
async function openPage(path: string, proxy: CutProxy, channels: string[], storage?: 'session' | 'local', context?: BrowserContext): Promise<{ tab: Page; errors: string[] }> {
  const ctx = context ?? (await browser!.newContext());
  const tab = await ctx.newPage();
  const errors: string[] = [];
  tab.on('pageerror', (err) => errors.push(err.message));
  await tab.goto(`http://127.0.0.1:${httpPort}${path}?ws=${proxy.port}&channels=${channels.join(',')}${storage ? `&storage=${storage}` : ''}`);
  return { tab, errors };
}

for (const [build, path] of [['script-tag build (RippleRecovery.withRecovery)', '/script-tag.html'], ['ESM build', '/module.html']] as const) {
  test(`Chromium, ${build}: a cut and a move to the other node while both nodes publish; every event once, in order`, async () => {
    const proxy = await proxies.to(nodes[0]);
    const channel = `web-${path.slice(1, 4)}`;
    const { tab, errors } = await openPage(path, proxy, [channel]);
    try {
      await until(tab, 'connected', (s) => s.connections === 1);
      await new Promise((r) => setTimeout(r, 200)); // the subscribe's round trip
      const publishing = Promise.all(nodes.map((n, i) => publishSteadily(sdk(n.port, app), `n${i}`, channel, 'tick', 200, 8)));
      await until(tab, '30 ticks', (s) => s.ticks[channel].length >= 30);
      proxy.cut();
      await until(tab, 'second connection, more ticks', (s) => s.connections === 2 && s.ticks[channel].length >= 200);
      proxy.retarget(nodes[1].port);
      proxy.cut();
      await until(tab, 'third connection', (s) => s.connections === 3);
      await publishing;
      const s = await until(tab, 'every tick', (x) => x.ticks[channel].length >= 400);
      await new Promise((r) => setTimeout(r, 200));
      const final = await state(tab);
      assertEachOnceInOrder(final.ticks[channel], { n0: 200, n1: 200 });
      assert.deepEqual(s.lost[channel], []);
      assert.deepEqual(errors, []);
    } finally {
      await tab.context().close();
    }
  });
}

test('Chromium, script-tag build: the node the page is on is SIGKILLed and restarted while the other one publishes; every event once, in order', async () => {
  const proxy = await proxies.to(nodes[0]);
  const { tab, errors } = await openPage('/script-tag.html', proxy, ['web-restart']);
  try {
    await until(tab, 'connected', (s) => s.connections === 1);
    await new Promise((r) => setTimeout(r, 200));
    const fromB = publishSteadily(sdk(nodes[1].port, app), 'b', 'web-restart', 'tick', 400, 6);
    await publishSteadily(sdk(nodes[0].port, app), 'a', 'web-restart', 'tick', 30, 6);
    await until(tab, '40 ticks', (s) => s.ticks['web-restart'].length >= 40);
    const port = nodes[0].port;
    await nodes[0].kill();
    proxy.down(); // the reconnect waits until the node is back
    nodes[0] = await clusterNode('web-a', port);
    proxy.up();
    await until(tab, 'second connection', (s) => s.connections === 2);
    await publishSteadily(sdk(nodes[0].port, app), 'a', 'web-restart', 'tick', 30, 6, 30);
    await fromB;
    await until(tab, 'every tick', (s) => s.ticks['web-restart'].length >= 460);
    await new Promise((r) => setTimeout(r, 200));
    const final = await state(tab);
    assertEachOnceInOrder(final.ticks['web-restart'], { a: 60, b: 400 });
    assert.deepEqual(final.lost['web-restart'], []);
    assert.deepEqual(errors, []);
  } finally {
    await tab.context().close();
  }
});

test("Chromium, storage 'session': a page reload recovers what was published meanwhile; a gap longer than the window is ripple:continuity_lost", async () => {
  const proxy = await proxies.to(nodes[0]);
  const { tab, errors } = await openPage('/script-tag.html', proxy, ['web-reload', 'small-web'], 'session');
  try {
    await until(tab, 'connected', (s) => s.connections === 1);
    await new Promise((r) => setTimeout(r, 200));
    const server = sdk(nodes[1].port, app);
    await publishSteadily(server, 'p', 'web-reload', 'tick', 3, 0);
    await publishSteadily(server, 'p', 'small-web', 'tick', 1, 0);
    await until(tab, 'first ticks', (s) => s.ticks['web-reload'].length === 3 && s.ticks['small-web'].length === 1);
    proxy.down(); // the reloaded page's connection waits until up()
    await tab.reload();
    await publishSteadily(server, 'p', 'web-reload', 'tick', 4, 0, 3);
    await publishSteadily(server, 'p', 'small-web', 'tick', 6, 0, 1); // the history keeps 3
    proxy.up();
    const s = await until(tab, 'recovered after the reload', (x) => x.ticks['web-reload']?.length >= 4 && x.lost['small-web']?.length >= 1);
    await new Promise((r) => setTimeout(r, 200));
    const final = await state(tab);
    assert.deepEqual(final.ticks['web-reload'].map((t) => t.seq), [3, 4, 5, 6], 'the new page gets exactly what it missed');
    assert.deepEqual(final.ticks['small-web'], [], 'none of a gap that could not be filled');
    assert.deepEqual([s.lost['web-reload'], final.lost['small-web']], [[], [{ reason: 'trimmed' }]]);
    assert.deepEqual(errors, []);
  } finally {
    await tab.context().close();
  }
});

test("Chromium, two tabs of the site: storage localStorage (shared by the tabs) is refused with a clear error; with 'session' a reloaded tab recovers exactly its own gap, and the exclusions of the other tab's socket stay the other tab's", async () => {
  const context = await browser!.newContext();
  try {
    const refused = await openPage('/script-tag.html', await proxies.to(nodes[0]), ['web-shared'], 'local', context);
    const s = await until(refused.tab, 'the wrap refused', (x) => x.wrapError !== undefined, 5000);
    assert.match(s.wrapError!, /localStorage is shared by every tab/);
    await refused.tab.close();

    const proxy1 = await proxies.to(nodes[0]);
    const proxy2 = await proxies.to(nodes[1]);
    const one = await openPage('/script-tag.html', proxy1, ['web-tabs'], 'session', context);
    const two = await openPage('/script-tag.html', proxy2, ['web-tabs'], 'session', context);
    await until(one.tab, 'tab one connected', (x) => x.connections === 1);
    const twoSocket = (await until(two.tab, 'tab two connected', (x) => x.connections === 1)).socketId!;
    await new Promise((r) => setTimeout(r, 200));
    const server = sdk(nodes[1].port, app);
    await publishSteadily(server, 'p', 'web-tabs', 'tick', 3, 0);
    await until(one.tab, 'tab one: 3 ticks', (x) => x.ticks['web-tabs'].length === 3);
    await until(two.tab, 'tab two: 3 ticks', (x) => x.ticks['web-tabs'].length === 3);
    proxy1.down(); // tab one's reloaded page waits for its connection until up()
    await one.tab.reload();
    await publishSteadily(server, 'p', 'web-tabs', 'tick', 2, 0, 3);
    // Tab two's own action, published by the backend with toOthers(): not to tab two, but tab one missed it.
    assert.equal((await server.trigger('web-tabs', 'tick', { publisher: 'p', seq: 5 } satisfies Tick, { socket_id: twoSocket })).status, 200);
    await publishSteadily(server, 'p', 'web-tabs', 'tick', 1, 0, 6);
    await until(two.tab, 'tab two: live ticks', (x) => x.ticks['web-tabs'].length === 6);
    proxy1.up();
    await until(one.tab, 'tab one recovered', (x) => x.ticks['web-tabs']?.length === 4);
    await new Promise((r) => setTimeout(r, 300));
    const [a, b] = await Promise.all([state(one.tab), state(two.tab)]);
    assert.deepEqual(a.ticks['web-tabs'].map((t) => t.seq), [3, 4, 5, 6], 'the reloaded tab gets what was published during its reload, from its own position');
    assert.deepEqual(b.ticks['web-tabs'].map((t) => t.seq), [0, 1, 2, 3, 4, 6], 'the other tab: live, without its own excluded event');
    assert.deepEqual([a.lost['web-tabs'], b.lost['web-tabs']], [[], []]);
    assert.deepEqual([...one.errors, ...two.errors], []);
  } finally {
    await context.close();
  }
});
