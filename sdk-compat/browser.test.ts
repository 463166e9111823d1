// pusher-js's browser bundle in a real Chromium (playwright-core, the system /usr/bin/chromium; never a
// downloaded browser): a local page on 127.0.0.1 loads node_modules/pusher-js/dist/web/pusher.min.js,
// connects to the server, subscribes to a public channel and records what it receives on window; the
// event is triggered through the `pusher` server SDK.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import PusherServer from 'pusher';
import { startNode, repoRoot, type NodeHandle } from '../src/testing/harness.js';
import { launchChromium, servePages, type PageServer } from '../src/testing/browser.js';

const app = { id: 'browser-id', key: 'browser-key', secret: 'browser-secret' };
const bundle = readFileSync(join(repoRoot, 'node_modules', 'pusher-js', 'dist', 'web', 'pusher.min.js'));

let node: NodeHandle;
let pages: PageServer | undefined;
let httpPort: number;
let browser: Browser | undefined;

function page(nodePort: number): string {
  return `<!doctype html>
<html>
<head><meta charset="utf-8"><title>ripple browser test</title></head>
<body>
<script src="/pusher.min.js"></script>
<script>
  window.received = [];
  window.states = [];
  window.subscribed = false;
  window.subscriptionError = null;
  const pusher = new Pusher(${JSON.stringify(app.key)}, {
    cluster: 'mt1',
    wsHost: '127.0.0.1',
    wsPort: ${nodePort},
    forceTLS: false,
    disableStats: true,
    enabledTransports: ['ws'],
  });
  window.pusher = pusher;
  pusher.connection.bind('state_change', (s) => window.states.push(s.current));
  const channel = pusher.subscribe('browser-news');
  channel.bind('pusher:subscription_succeeded', () => { window.subscribed = true; });
  channel.bind('pusher:subscription_error', (e) => { window.subscriptionError = e; });
  channel.bind('headline', (data) => window.received.push(data));
</script>
</body>
</html>`;
}

before(async () => {
  node = await startNode({ config: { apps: [app] } });
  const html = page(node.port);
  pages = await servePages((req, res, url) => {
    if (url.pathname === '/') res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(html);
    else if (url.pathname === '/pusher.min.js') res.writeHead(200, { 'content-type': 'application/javascript' }).end(bundle);
    else return false;
    return true;
  });
  httpPort = pages.port;
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await pages?.close();
  await node?.kill();
});

test('pusher-js browser bundle in Chromium: subscribes to a public channel and receives an event triggered with the pusher SDK', async () => {
  const ctx = await browser!.newContext();
  try {
    const tab = await ctx.newPage();
    const pageErrors: string[] = [];
    tab.on('pageerror', (err) => pageErrors.push(err.message));
    tab.on('console', (msg) => {
      if (msg.type() === 'error') pageErrors.push(msg.text());
    });

    await tab.goto(`http://127.0.0.1:${httpPort}/`);
    await tab.waitForFunction(() => (window as unknown as { subscribed: boolean }).subscribed === true, undefined, { timeout: 10_000 });
    const socketId = await tab.evaluate(() => (window as unknown as { pusher: { connection: { socket_id: string } } }).pusher.connection.socket_id);
    assert.match(socketId, /^\d+\.\d+$/);

    const server = new PusherServer({ appId: app.id, key: app.key, secret: app.secret, host: '127.0.0.1', port: String(node.port), useTLS: false });
    const res = await server.trigger('browser-news', 'headline', { title: 'Hello from the SDK', text: 'ą§¶€ "quoted"', n: 42 });
    assert.equal(res.status, 200);

    await tab.waitForFunction(() => (window as unknown as { received: unknown[] }).received.length >= 1, undefined, { timeout: 5000 });
    await tab.waitForTimeout(300);
    const state = await tab.evaluate(() => {
      const w = window as unknown as { received: unknown[]; states: string[]; subscriptionError: unknown };
      return { received: w.received, states: w.states, subscriptionError: w.subscriptionError };
    });
    assert.deepEqual(state.received, [{ title: 'Hello from the SDK', text: 'ą§¶€ "quoted"', n: 42 }]);
    assert.equal(state.subscriptionError, null);
    // pusher-js starts connecting inside its constructor, before the page could bind state_change.
    assert.deepEqual(state.states.filter((s) => s !== 'connecting'), ['connected'], 'connected once, never unavailable or failed');
    assert.deepEqual(pageErrors, []);
  } finally {
    await ctx.close();
  }
});
