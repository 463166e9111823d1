// The debug console's page (issue 21) in headless Chromium, served by the node itself: a pusher-js
// client's connect, subscribe, client event, a REST trigger with the pusher SDK and a webhook attempt
// show up, from one node and from the other node of two sharing Redis; the type boxes, the search,
// pause/resume and the speed control work; the connection doctor explains a wrong key, a wrong
// channel-auth signature, a wrong REST signature and a refused origin; the event creator's event (and
// a replayed one) reaches a pusher-js subscriber; access is refused without the credential and with
// another app's secret; payloads made to run script stay text. Saves docs/console.png.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import PusherServer from 'pusher';
import WebSocket from 'ws';
import type { Browser, Page } from 'playwright-core';
import { launchChromium } from '../src/testing/browser.js';
import { buildConsolePage } from '../src/testing/console-stream.js';
import { eventually, sleep } from '../src/testing/eventually.js';
import { repoRoot, startNode, startRedis, type NodeHandle, type RedisHandle } from '../src/testing/harness.js';
import { Pusher, type PusherClient } from '../src/testing/pusher-js.js';
import { WebhookReceiver } from '../src/testing/webhook-receiver.js';

const OPERATOR = 'operator-token-for-the-browser-test';
const a1 = { id: 'a1', key: 'k1', secret: 's1' };
const a2 = { id: 'a2', key: 'k2', secret: 's2' };

let browser: Browser | undefined;
let receiver: WebhookReceiver;
let redis: RedisHandle | undefined;
const nodes: NodeHandle[] = [];
const clients: PusherClient[] = [];

before(async () => {
  buildConsolePage();
  receiver = await WebhookReceiver.start();
  browser = await launchChromium();
});
after(async () => {
  for (const c of clients) c.disconnect();
  await browser?.close();
  await Promise.all(nodes.map((n) => n.stop(5000)));
  await receiver.stop();
  await redis?.stop();
});

async function node(env: Record<string, string> = {}): Promise<NodeHandle> {
  const config = {
    apps: [
      { ...a1, enableClientMessages: true, webhooks: [{ url: receiver.url, event_types: ['channel_occupied', 'channel_vacated'] }] },
      { ...a2, allowedOrigins: ['https://app.example'] },
    ],
  };
  const n = await startNode({ config, env: { OPERATOR_TOKEN: OPERATOR, ...env } });
  nodes.push(n);
  return n;
}

function sdk(n: NodeHandle, secret = a1.secret): PusherServer {
  return new PusherServer({ appId: a1.id, key: a1.key, secret, host: '127.0.0.1', port: String(n.port), useTLS: false });
}

/** A pusher-js client (Node) of app a1 on node `n`; its authorizer signs with `secret`. */
function client(n: NodeHandle, secret = a1.secret, key = a1.key): PusherClient {
  const signer = sdk(n, secret);
  const p = new Pusher(key, {
    cluster: 'mt1',
    wsHost: '127.0.0.1',
    wsPort: n.port,
    forceTLS: false,
    disableStats: true,
    enabledTransports: ['ws'],
    authorizer: (channel) => ({ authorize: (socketId, cb) => cb(null, signer.authorizeChannel(socketId, channel.name)) }),
  });
  clients.push(p);
  return p;
}

async function connected(p: PusherClient): Promise<string> {
  await eventually(() => p.connection.state === 'connected', { timeoutMs: 10_000, what: 'pusher-js connected' });
  return p.connection.socket_id;
}

async function subscribed(p: PusherClient, name: string): Promise<void> {
  const ch = p.subscribe(name);
  await new Promise<void>((resolve, reject) => {
    ch.bind('pusher:subscription_succeeded', () => resolve());
    ch.bind('pusher:subscription_error', (e: unknown) => reject(new Error(JSON.stringify(e))));
  });
}

/** The console page, opened with the operator token, watching `appId`. */
async function openConsole(n: NodeHandle, appId = a1.id, query = ''): Promise<{ tab: Page; errors: string[] }> {
  const tab = await (await browser!.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
  const errors: string[] = [];
  tab.on('pageerror', (err) => errors.push(err.message));
  await tab.goto(`${n.url}/ripple/console/${query}`);
  await tab.fill('#operator-token', OPERATOR);
  await tab.click('#operator-form button');
  await tab.waitForSelector('#main:not([hidden])');
  await tab.selectOption('#app', appId);
  await tab.waitForFunction(() => document.getElementById('status')!.textContent!.startsWith('live'), undefined, { timeout: 10_000 });
  return { tab, errors };
}

/** Waits for a visible log row of `type` whose text matches `text`; returns its text. */
async function row(tab: Page, type: string, text: RegExp | string = ''): Promise<string> {
  const pattern = typeof text === 'string' ? text : text.source;
  const flags = typeof text === 'string' ? '' : text.flags;
  const handle = await tab.waitForFunction(
    ({ type, pattern, flags }) => {
      const re = new RegExp(pattern.replace(/[.*+?^${}()|[\]\\]/g, (c) => (flags === 'x' ? `\\${c}` : c)), flags === 'x' ? '' : flags);
      const li = Array.from(document.querySelectorAll<HTMLElement>(`#log li[data-type="${type}"]`)).find((l) => !l.hidden && re.test(l.textContent ?? ''));
      return li?.textContent ?? false;
    },
    { type, pattern: typeof text === 'string' ? text : pattern, flags: typeof text === 'string' ? 'x' : flags },
    { timeout: 15_000 },
  );
  return (await handle.jsonValue()) as string;
}

test('one node: the live log, filters, pause and speed, the doctor, the event creator, and payloads that stay text', async () => {
  const n = await node();
  const { tab, errors } = await openConsole(n);
  await row(tab, 'watching');

  // pusher-js connects, subscribes (a webhook goes out), sends a client event; the SDK triggers.
  const p = client(n);
  const socketId = await connected(p);
  await row(tab, 'connection_opened', socketId);
  await subscribed(p, 'private-room');
  await row(tab, 'subscribed', 'private-room');
  await row(tab, 'webhook', /status=200/);
  p.channel('private-room').trigger('client-typing', { who: 'ann' });
  await row(tab, 'client_event', 'client-typing');
  await sdk(n).trigger('private-room', 'news', { n: 1 }, { socket_id: socketId });
  const api = await row(tab, 'api_message', 'news');
  assert.match(api, new RegExp(`excludedSocketId=${socketId.replace('.', '\\.')}`));

  // The doctor: a wrong key, a channel auth signed with another app's secret, a REST call signed
  // with another app's secret, a refused origin.
  const wrongKey = client(n, a1.secret, 'not-a-key');
  wrongKey.connect();
  assert.match(await row(tab, 'connection_refused', 'not-a-key'), /Keys this server knows: k1, k2/);
  const wrongAuth = client(n, a2.secret);
  await connected(wrongAuth);
  wrongAuth.subscribe('private-other');
  assert.match(await row(tab, 'subscription_refused', 'private-other'), /Your signature matches: signed with another app's secret\s*That app: a2/);
  await assert.rejects(sdk(n, a2.secret).trigger('c', 'e', {}));
  const rest = await row(tab, 'api_refused', /Your signature matches: signed with another app's secret\s*That app: a2/);
  assert.match(rest, /Server signed: POST\n?\/apps\/a1\/events/);
  await tab.screenshot({ path: join(repoRoot, 'docs', 'console.png') });
  // (app a2 allows one origin only: the page switches to it)
  await tab.selectOption('#app', a2.id);
  await row(tab, 'watching');
  const refused = new WebSocket(`ws://127.0.0.1:${n.port}/app/${a2.key}?protocol=7`, { origin: 'https://evil.example' });
  refused.on('error', () => {});
  assert.match(await row(tab, 'connection_refused', 'https://evil.example'), /Add "https:\/\/evil\.example" to the app's allowedOrigins/);
  refused.terminate();
  await tab.selectOption('#app', a1.id);
  await tab.waitForFunction(() => document.getElementById('status')!.textContent!.startsWith('live'), undefined, { timeout: 10_000 });

  // Payloads made to run script are shown as text and never run.
  const payloads = ['<script>window.__xss = 1</script>', '<img src=x onerror="window.__xss = 2">', 'javascript:window.__xss = 3'];
  for (const data of payloads) await sdk(n).trigger('private-room', 'xss', data);
  await sdk(n).trigger('private-room', '<img src=x onerror="window.__xss = 4">', '{}');
  for (const data of payloads) await row(tab, 'api_message', data);
  assert.equal(await tab.evaluate(() => (window as { __xss?: number }).__xss), undefined, 'no payload ran');
  assert.equal(await tab.locator('#log img, #log script').count(), 0, 'no payload became an element');

  // Type boxes and search hide rows; unchecking api_message hides every API message.
  await tab.uncheck('#types input[data-type="api_message"]');
  assert.equal(await tab.locator('#log li[data-type="api_message"]:visible').count(), 0);
  await tab.check('#types input[data-type="api_message"]');
  await tab.fill('#search', socketId);
  await eventually(async () => (await tab.locator('#log li:visible').allTextContents()).every((t) => t.includes(socketId)), { timeoutMs: 5000, what: 'search by socket id' });
  assert.ok((await tab.locator('#log li:visible').count()) >= 3);
  await tab.fill('#search', '');

  // Pause holds the rows back; the speed control meters them out after resume.
  await tab.selectOption('#speed', '5');
  await tab.click('#pause');
  const before = await tab.locator('#log li[data-type="api_message"]').count();
  for (let i = 0; i < 10; i++) await sdk(n).trigger('private-room', `held-${i}`, '{}');
  await tab.waitForFunction(() => document.getElementById('status')!.textContent === 'paused, 10 waiting', undefined, { timeout: 10_000 });
  assert.equal(await tab.locator('#log li[data-type="api_message"]').count(), before, 'nothing shown while paused');
  await tab.click('#pause');
  await tab.waitForFunction(() => /^live, [1-9] waiting$/.test(document.getElementById('status')!.textContent!), undefined, { timeout: 10_000 });
  await row(tab, 'api_message', 'held-9');
  await tab.selectOption('#speed', '0');

  // The event creator, and a replay of a logged API message, reach a pusher-js subscriber.
  const got: string[] = [];
  p.channel('private-room').bind_global((name: string, data: unknown) => got.push(`${name} ${JSON.stringify(data)}`));
  await tab.click('#creator summary');
  await tab.fill('#send-channel', 'private-room');
  await tab.fill('#send-event', 'from-console');
  await tab.fill('#send-data', '{"hello":"world"}');
  await tab.click('#creator-form button');
  await eventually(() => got.includes('from-console {"hello":"world"}'), { timeoutMs: 10_000, what: () => `the created event; got ${got.join(', ')}` });
  await tab.locator('#log li[data-type="api_message"]', { hasText: 'from-console' }).locator('button.replay').click();
  await eventually(() => got.filter((g) => g.startsWith('from-console')).length === 2, { timeoutMs: 10_000, what: 'the replayed event' });

  assert.deepEqual(errors, []);
});

test('access: no credential, a wrong token and another app\'s secret are refused; the app\'s own key and secret open it', async () => {
  const n = await node();
  const tab = await (await browser!.newContext()).newPage();
  const page = await tab.goto(`${n.url}/ripple/console/`);
  assert.match(page!.headers()['content-security-policy'], /frame-ancestors 'none'/);
  await tab.fill('#operator-token', 'not-the-token-at-all');
  await tab.click('#operator-form button');
  await tab.waitForFunction(() => /operator token/.test(document.getElementById('login-error')!.textContent!), undefined, { timeout: 10_000 });
  await tab.fill('#app-id', a1.id);
  await tab.fill('#app-key', a1.key);
  await tab.fill('#app-secret', a2.secret);
  await tab.click('#app-form button');
  await tab.waitForFunction(() => /Invalid signature/.test(document.getElementById('login-error')!.textContent!), undefined, { timeout: 10_000 });
  assert.equal(await tab.locator('#main').isHidden(), true);
  await tab.fill('#app-secret', a1.secret);
  await tab.click('#app-form button');
  await tab.waitForSelector('#main:not([hidden])');
  assert.deepEqual(await tab.locator('#app option').allTextContents(), ['a1']);
  assert.equal(await tab.inputValue('#app-secret'), '', 'the secret does not stay in the form');
  const p = client(n);
  await row(tab, 'connection_opened', await connected(p));
});

test('two nodes sharing Redis: the page on one node shows a pusher-js client, a REST trigger and a webhook of the other', async () => {
  redis = await startRedis();
  const na = await node({ REDIS_URL: redis.url, NODE_ID: 'nodeA123' });
  const nb = await node({ REDIS_URL: redis.url, NODE_ID: 'nodeB456' });
  const { tab, errors } = await openConsole(na);
  await row(tab, 'watching', 'node nodeB456');
  const p = client(nb);
  const socketId = await connected(p);
  assert.match(await row(tab, 'connection_opened', socketId), /node nodeB456/);
  await subscribed(p, 'private-b');
  assert.match(await row(tab, 'subscribed', 'private-b'), /node nodeB456/);
  p.channel('private-b').trigger('client-b', {});
  assert.match(await row(tab, 'client_event', 'client-b'), /node nodeB456/);
  await sdk(nb).trigger('private-b', 'via-b', {});
  assert.match(await row(tab, 'api_message', 'via-b'), /node nodeB456/);
  await row(tab, 'webhook', /status=200/);

  // The overview: both nodes' connections and messages charted with their total, and the occupied channels.
  await tab.click('#overview summary');
  await tab.waitForFunction(() => Array.from(document.querySelectorAll('#legend li'), (l) => l.textContent).join('|') === 'node nodeA123|node nodeB456|total', undefined, { timeout: 20_000 });
  await tab.waitForFunction(() => Number((document.getElementById('chart-connections') as HTMLCanvasElement).dataset.points) >= 3, undefined, { timeout: 20_000 });
  await tab.waitForFunction(() => /private-b\s*1\s*0/.test(document.getElementById('channels')!.textContent!), undefined, { timeout: 20_000 });
  await tab.locator('#overview').screenshot({ path: join(repoRoot, 'docs', 'console-overview.png') });

  // A second page, on the other node, while the first watches: each node's `watching` row, and the charts'
  // history at once (two samples a node at least; a new sample comes only every 5 s).
  await tab.waitForFunction(() => Number((document.getElementById('chart-connections') as HTMLCanvasElement).dataset.points) >= 6, undefined, { timeout: 20_000 });
  const second = await openConsole(nb);
  await row(second.tab, 'watching', 'node nodeA123');
  await row(second.tab, 'watching', 'node nodeB456');
  await second.tab.click('#overview summary');
  await second.tab.waitForFunction(() => Number((document.getElementById('chart-connections') as HTMLCanvasElement).dataset.points) >= 6, undefined, { timeout: 4000 });
  assert.equal(await tab.locator('#log li[data-type="watching"]').count(), 2, 'the first page is not told again');
  assert.deepEqual([...errors, ...second.errors], []);
});

test('webhook dead letters: a failing endpoint\'s attempts in the log, the dead letter inspected and replayed from the page', async () => {
  const failing = await WebhookReceiver.start();
  failing.status = 500;
  try {
    const config = { apps: [{ ...a1, webhooks: [{ url: `${failing.url}?token=do-not-show`, event_types: ['channel_occupied'] }] }], webhooks: { maxRetryMs: 1000 } };
    const n = await startNode({ config, env: { OPERATOR_TOKEN: OPERATOR } });
    nodes.push(n);
    const { tab, errors } = await openConsole(n);
    await row(tab, 'watching');
    const p = client(n);
    await connected(p);
    await subscribed(p, 'hooked');
    await row(tab, 'webhook', /attempt=1 .*error=HTTP 500/);
    await row(tab, 'webhook', /deadLetter=true/);
    await tab.click('#webhooks summary');
    await tab.waitForFunction(() => document.querySelectorAll('#dead li').length === 1, undefined, { timeout: 10_000 });
    const letter = await tab.locator('#dead li').textContent();
    assert.match(letter!, /channel_occupied hooked/);
    assert.match(letter!, new RegExp(`${failing.url.replace(/[.]/g, '\\.')}\\s`));
    assert.doesNotMatch(letter!, /do-not-show/, 'the URL\'s query is not shown');
    await tab.locator('#dead li summary').click();
    assert.match(await tab.locator('#dead li pre').textContent() ?? '', /"name": "channel_occupied"/);
    failing.status = 200;
    await tab.click('#dead-replay');
    await tab.waitForFunction(() => /1 event\(s\) back on their queue/.test(document.getElementById('dead-result')!.textContent!), undefined, { timeout: 10_000 });
    await row(tab, 'webhook', /status=200/);
    await eventually(() => failing.named('channel_occupied', 'hooked').length === 1, { timeoutMs: 10_000, what: 'the replayed webhook delivered' });
    assert.deepEqual(errors, []);
  } finally {
    await failing.stop();
  }
});

test('a stream over its rate shows an "N skipped" line on the page', async () => {
  const n = await node();
  const { tab, errors } = await openConsole(n, a1.id, '?rate=2');
  await row(tab, 'watching');
  await tab.uncheck('#types input[data-type="watching"]');
  const batch = Array.from({ length: 10 }, (_, i) => ({ name: `burst-${i}`, channel: 'burst', data: '{}' }));
  await sdk(n).triggerBatch(batch);
  const line = await row(tab, 'skipped', /\d+ skipped/);
  const shown = await tab.locator('#log li[data-type="api_message"]').count();
  assert.equal(Number(/(\d+) skipped/.exec(line)![1]) + shown, 10, `${line}; ${shown} shown`);
  assert.ok(shown <= 2);
  assert.deepEqual(errors, []);
});

test('the page keeps at most 2000 rows: the oldest go first', async () => {
  const n = await node();
  const { tab, errors } = await openConsole(n, a1.id, '?rate=1000');
  await row(tab, 'watching');
  await tab.selectOption('#speed', '0');
  const server = sdk(n);
  let sent = 0;
  // Until the oldest row (the node's `watching`) has made way for newer ones.
  while ((await tab.locator('#log li[data-type="watching"]').count()) > 0) {
    assert.ok(sent < 5000, 'the oldest row went within 5000 events');
    await Promise.all(Array.from({ length: 10 }, () => server.triggerBatch(Array.from({ length: 10 }, () => ({ name: `e${sent++}`, channel: 'many', data: '{}' })))));
    // 100 events at most every 110 ms: under the stream's 1,000 a second, so each one is a row, not
    // part of a "skipped" line (a fast REST path sent them faster than that, and too few rows came).
    await sleep(110);
  }
  assert.equal(await tab.locator('#log li').count(), 2000);
  assert.deepEqual(errors, []);
});

test('paused, the page holds at most 5000 events and shows how many it left out', async () => {
  const n = await node();
  const { tab, errors } = await openConsole(n, a1.id, '?rate=1000');
  await row(tab, 'watching');
  await tab.click('#pause');
  const server = sdk(n);
  let sent = 0;
  const waiting = async () => Number(/(\d+) waiting/.exec((await tab.textContent('#status')) ?? '')?.[1] ?? 0);
  // The stream passes at most 1000 events a second (the rest are skipped server-side), so the page
  // fills by time, not by how many are sent: send about that many a second until 5000 wait.
  const deadline = Date.now() + 60_000;
  while ((await waiting()) < 5000) {
    assert.ok(Date.now() < deadline, `the page held 5000 events within 60 s (${sent} sent)`);
    await Promise.all(Array.from({ length: 10 }, () => server.triggerBatch(Array.from({ length: 10 }, () => ({ name: `e${sent++}`, channel: 'many', data: '{}' })))));
    await new Promise((r) => setTimeout(r, 100));
  }
  await server.triggerBatch(Array.from({ length: 10 }, () => ({ name: `e${sent++}`, channel: 'many', data: '{}' })));
  await tab.waitForFunction(() => /5000 waiting/.test(document.getElementById('status')!.textContent!), undefined, { timeout: 10_000 });
  await tab.click('#pause');
  const line = await row(tab, 'skipped', /left out by this page/);
  assert.ok(Number(/(\d+) skipped/.exec(line)![1]) >= 1, line);
  assert.deepEqual(errors, []);
});
