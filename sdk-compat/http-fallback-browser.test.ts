// pusher-js in a real Chromium where WebSockets are blocked (issue 14): the page either removes
// window.WebSocket (pusher-js then falls back by itself) or allows only xhr_streaming or only
// xhr_polling. Every feature must work as on a socket: public, private, encrypted and presence
// channels (member events both ways with a WebSocket client), client events, sign-in with
// server-to-user events, and REST exclusion by socket_id. The page is served from another port, so
// every request is a cross-origin POST with a CORS preflight, as on a real site; channel and user
// authorisation go through an auth endpoint of that page's server (the `pusher` server SDK).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import PusherServer from 'pusher';
import { startNode, repoRoot, type NodeHandle } from '../src/testing/harness.js';
import { launchChromium, servePages, type PageServer } from '../src/testing/browser.js';
import { eventually, sleep } from '../src/testing/eventually.js';
import type { PusherClient } from '../src/testing/pusher-js.js';
import { Clients, connected } from './support-users.js';

const app = { id: 'fallback-id', key: 'fallback-key', secret: 'fallback-secret' };
const masterKey = Buffer.alloc(32, 9).toString('base64');
const GRACE_MS = 1500;
const bundles: Record<string, Buffer> = {
  '/pusher.min.js': readFileSync(join(repoRoot, 'node_modules', 'pusher-js', 'dist', 'web', 'pusher.min.js')),
  '/pusher-with-encryption.min.js': readFileSync(join(repoRoot, 'node_modules', 'pusher-js', 'dist', 'web', 'pusher-with-encryption.min.js')),
};

let node: NodeHandle;
let http: PageServer | undefined;
let pagePort: number;
let browser: Browser | undefined;
let server: PusherServer;
const wsClients = new Clients();

interface PageOptions {
  /** pusher-js enabledTransports; unset: its defaults */
  transports?: string[];
  /** The page deletes window.WebSocket before pusher-js loads. */
  removeWebSocket?: boolean;
  /** user id for presence channel_data and sign-in */
  user?: string;
  bundle?: keyof typeof bundles;
}

function page(o: PageOptions): string {
  const options: Record<string, unknown> = {
    cluster: 'mt1',
    wsHost: '127.0.0.1',
    wsPort: node.port,
    httpHost: '127.0.0.1',
    httpPort: node.port,
    forceTLS: false,
    disableStats: true,
    channelAuthorization: { endpoint: `/auth?user=${o.user ?? ''}`, transport: 'ajax' },
    userAuthentication: { endpoint: `/user-auth?user=${o.user ?? ''}`, transport: 'ajax' },
  };
  if (o.transports) options.enabledTransports = o.transports;
  return `<!doctype html>
<html>
<head><meta charset="utf-8"><title>ripple HTTP fallback test</title></head>
<body>
${o.removeWebSocket ? '<script>delete window.WebSocket; window.WebSocket = undefined;</script>' : ''}
<script src="${o.bundle ?? '/pusher-with-encryption.min.js'}"></script>
<script>
  window.seen = [];
  window.states = [];
  window.errors = [];
  const pusher = new Pusher(${JSON.stringify(app.key)}, ${JSON.stringify(options)});
  window.pusher = pusher;
  pusher.connection.bind('state_change', (s) => window.states.push(s.current));
  pusher.connection.bind('error', (e) => window.errors.push(JSON.stringify(e && (e.data || e.error || e.type))));
  window.transport = () => pusher.connection.connection && pusher.connection.connection.transport.name;
  window.socketId = () => pusher.connection.socket_id;
  window.sub = (name, events) => new Promise((resolve, reject) => {
    const ch = pusher.subscribe(name);
    for (const e of events) ch.bind(e, (data) => window.seen.push({ channel: name, event: e, data }));
    ch.bind('pusher:subscription_succeeded', (d) => resolve(d && d.members ? Object.keys(d.members).sort() : true));
    ch.bind('pusher:subscription_error', (e) => reject(new Error(JSON.stringify(e))));
  });
  window.unsub = (name) => pusher.unsubscribe(name);
  window.whisper = (name, event, data) => pusher.channel(name).trigger(event, data);
  window.signin = (events) => {
    for (const e of events) pusher.user.bind(e, (data) => window.seen.push({ user: true, event: e, data }));
    pusher.signin();
    return pusher.user.signinDonePromise.then(() => pusher.user.user_data && pusher.user.user_data.id);
  };
</script>
</body>
</html>`;
}

function formBody(req: IncomingMessage): Promise<URLSearchParams> {
  return new Promise((resolve, reject) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => resolve(new URLSearchParams(body)));
    req.on('error', reject);
  });
}

before(async () => {
  node = await startNode({
    env: { HTTP_SESSION_GRACE_MS: String(GRACE_MS) },
    config: { apps: [{ ...app, enableClientMessages: true }] },
  });
  server = new PusherServer({ appId: app.id, key: app.key, secret: app.secret, host: '127.0.0.1', port: String(node.port), useTLS: false, encryptionMasterKeyBase64: masterKey });
  http = await servePages((req, res, url) => {
    const user = url.searchParams.get('user') ?? '';
    if (url.pathname === '/') {
      const o = JSON.parse(url.searchParams.get('o') ?? '{}') as PageOptions;
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(page(o));
    } else if (bundles[url.pathname]) {
      res.writeHead(200, { 'content-type': 'application/javascript' }).end(bundles[url.pathname]);
    } else if (url.pathname === '/auth' && req.method === 'POST') {
      void formBody(req).then((f) => {
        const channel = f.get('channel_name')!;
        const presence = channel.startsWith('presence-') ? { user_id: user, user_info: { name: user } } : undefined;
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(server.authorizeChannel(f.get('socket_id')!, channel, presence)));
      });
    } else if (url.pathname === '/user-auth' && req.method === 'POST') {
      void formBody(req).then((f) => {
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(server.authenticateUser(f.get('socket_id')!, { id: user, user_info: { name: user } })));
      });
    } else {
      return false;
    }
    return true;
  });
  pagePort = http.port;
  browser = await launchChromium();
});

after(async () => {
  wsClients.closeAll();
  await browser?.close();
  await http?.close();
  await node?.kill();
});

interface Tab {
  ctx: BrowserContext;
  tab: Page;
  /** Every URL the page requested. */
  requests: string[];
  pageErrors: string[];
}

/** Opens the page and waits until pusher-js is connected. */
async function openTab(o: PageOptions): Promise<Tab> {
  const ctx = await browser!.newContext();
  const tab = await ctx.newPage();
  const requests: string[] = [];
  const pageErrors: string[] = [];
  tab.on('request', (r) => requests.push(r.url()));
  tab.on('pageerror', (err) => pageErrors.push(err.message));
  tab.on('console', (msg) => {
    if (msg.type() === 'error') pageErrors.push(msg.text());
  });
  await tab.goto(`http://127.0.0.1:${pagePort}/?o=${encodeURIComponent(JSON.stringify(o))}`);
  try {
    await tab.waitForFunction(() => (window as unknown as { pusher: PusherClient }).pusher.connection.state === 'connected', undefined, { timeout: 15_000 });
  } catch (err) {
    const states = await tab.evaluate(() => (window as unknown as { states: string[]; errors: string[] }).states.concat((window as unknown as { errors: string[] }).errors));
    throw new Error(`pusher-js did not connect: ${JSON.stringify(states)} ${pageErrors.join('\n')}\n${node.output().slice(-2000)}`, { cause: err });
  }
  return { ctx, tab, requests, pageErrors };
}

type Seen = { channel?: string; user?: boolean; event: string; data: unknown };
const seen = (t: Tab) => t.tab.evaluate(() => (window as unknown as { seen: Seen[] }).seen);
const states = (t: Tab) => t.tab.evaluate(() => (window as unknown as { states: string[] }).states);
const socketId = (t: Tab) => t.tab.evaluate(() => (window as unknown as { socketId(): string }).socketId());
const transport = (t: Tab) => t.tab.evaluate(() => (window as unknown as { transport(): string }).transport());
const sub = (t: Tab, channel: string, events: string[]) =>
  t.tab.evaluate(([c, e]) => (window as unknown as { sub(c: string, e: string[]): Promise<unknown> }).sub(c, e), [channel, events] as const);

/** Events the page saw, as [event, data] pairs, for one channel. */
async function seenOn(t: Tab, channel: string): Promise<[string, unknown][]> {
  return (await seen(t)).filter((s) => s.channel === channel).map((s) => [s.event, s.data]);
}

/** Every request the page made stayed on loopback (pusher-js never fell back to Pusher's own hosts). */
function assertLoopbackOnly(t: Tab): void {
  const elsewhere = t.requests.filter((u) => new URL(u).hostname !== '127.0.0.1');
  assert.deepEqual(elsewhere, [], 'no request left 127.0.0.1');
}

/** A Node pusher-js client on a WebSocket, authorised by the server SDK directly. */
async function wsClient(user: string): Promise<PusherClient> {
  const c = wsClients.make(node.port, server, { key: app.key, presence: { user_id: user, user_info: { name: user } } });
  await connected(c);
  return c.p;
}

function wsSubscribe(p: PusherClient, channel: string, events: string[], into: [string, unknown][]): Promise<void> {
  return new Promise((resolve, reject) => {
    const ch = p.subscribe(channel);
    for (const e of events) ch.bind(e, (d: unknown) => into.push([e, d]));
    ch.bind('pusher:subscription_succeeded', () => resolve());
    ch.bind('pusher:subscription_error', (e: unknown) => reject(new Error(JSON.stringify(e))));
  });
}

test('window.WebSocket removed: pusher-js falls back to xhr_streaming on httpHost/httpPort, never to Pusher\'s hosts, and receives an event', async () => {
  const t = await openTab({ removeWebSocket: true, bundle: '/pusher.min.js' });
  try {
    assert.equal(await transport(t), 'xhr_streaming');
    assert.match(await socketId(t), /^\d+\.\d+$/);
    await sub(t, 'fallback-news', ['headline']);
    const res = await server.trigger('fallback-news', 'headline', { title: 'ą§¶€ "quoted"' });
    assert.equal(res.status, 200);
    await eventually(async () => (await seenOn(t, 'fallback-news')).length === 1, { timeoutMs: 5000, what: 'the event' });
    assert.deepEqual(await seenOn(t, 'fallback-news'), [['headline', { title: 'ą§¶€ "quoted"' }]]);
    assert.deepEqual((await states(t)).filter((s) => s !== 'connecting'), ['connected']);
    assert.ok(t.requests.some((u) => u.includes('/pusher/app/fallback-key/') && u.includes('/xhr_streaming?')), 'an xhr_streaming request');
    assertLoopbackOnly(t);
    assert.deepEqual(t.pageErrors, []);
  } finally {
    await t.ctx.close();
  }
});

for (const transportName of ['xhr_streaming', 'xhr_polling']) {
  test(`${transportName}: public channel, REST trigger excluding the page's socket_id, private and encrypted channels`, async () => {
    const t = await openTab({ transports: [transportName] });
    try {
      assert.equal(await transport(t), transportName);
      const id = await socketId(t);
      const other = await wsClient('observer');
      const otherSaw: [string, unknown][] = [];
      await Promise.all([sub(t, 'orders', ['placed']), wsSubscribe(other, 'orders', ['placed'], otherSaw)]);
      assert.equal((await server.trigger('orders', 'placed', { n: 1 }, { socket_id: id })).status, 200);
      assert.equal((await server.trigger('orders', 'placed', { n: 2 })).status, 200);
      await eventually(async () => otherSaw.length === 2 && (await seenOn(t, 'orders')).length >= 1, { timeoutMs: 5000, what: 'both events' });
      await sleep(300);
      assert.deepEqual(await seenOn(t, 'orders'), [['placed', { n: 2 }]], 'the event triggered with its socket_id is left out');

      await sub(t, 'private-ledger', ['entry']);
      await sub(t, 'private-encrypted-vault', ['sealed']);
      await server.trigger('private-ledger', 'entry', { amount: 5 });
      await server.trigger('private-encrypted-vault', 'sealed', { secret: 'ą§ 42' });
      await eventually(async () => (await seenOn(t, 'private-encrypted-vault')).length === 1, { timeoutMs: 5000, what: 'the encrypted event' });
      assert.deepEqual(await seenOn(t, 'private-ledger'), [['entry', { amount: 5 }]]);
      assert.deepEqual(await seenOn(t, 'private-encrypted-vault'), [['sealed', { secret: 'ą§ 42' }]], 'pusher-js decrypted it');
      assert.equal(await socketId(t), id, 'one connection throughout');
      assert.deepEqual((await states(t)).filter((s) => s !== 'connecting'), ['connected']);
      assertLoopbackOnly(t);
      assert.deepEqual(t.pageErrors, []);
    } finally {
      await t.ctx.close();
    }
  });

  test(`${transportName}: presence member events both ways with a WebSocket client, and client events both ways`, async () => {
    const channel = `presence-room-${transportName}`;
    const bob = await wsClient('bob');
    const bobSaw: [string, unknown][] = [];
    await wsSubscribe(bob, channel, ['pusher:member_added', 'pusher:member_removed', 'client-typing'], bobSaw);
    const t = await openTab({ transports: [transportName], user: 'alice' });
    try {
      const members = await sub(t, channel, ['pusher:member_added', 'pusher:member_removed', 'client-reply']);
      assert.deepEqual(members, ['alice', 'bob']);
      await eventually(() => bobSaw.length === 1, { timeoutMs: 5000, what: "bob sees alice's join" });
      assert.deepEqual(bobSaw[0], ['pusher:member_added', { id: 'alice', info: { name: 'alice' } }]);

      // client events: page → socket, socket → page
      await t.tab.evaluate((c) => (window as unknown as { whisper(c: string, e: string, d: unknown): boolean }).whisper(c, 'client-typing', { from: 'alice' }), channel);
      await eventually(() => bobSaw.length === 2, { timeoutMs: 5000, what: "bob gets alice's client event" });
      assert.deepEqual(bobSaw[1], ['client-typing', { from: 'alice' }]);
      bob.channel(channel).trigger('client-reply', { from: 'bob' });
      await eventually(async () => (await seenOn(t, channel)).length === 1, { timeoutMs: 5000, what: "alice gets bob's client event" });

      // a second WebSocket member comes and goes; the page sees both
      const carol = await wsClient('carol');
      await wsSubscribe(carol, channel, [], []);
      await eventually(async () => (await seenOn(t, channel)).length === 2, { timeoutMs: 5000, what: 'carol added' });
      carol.unsubscribe(channel);
      await eventually(async () => (await seenOn(t, channel)).length === 3, { timeoutMs: 5000, what: 'carol removed' });
      assert.deepEqual(await seenOn(t, channel), [
        ['client-reply', { from: 'bob' }],
        ['pusher:member_added', { id: 'carol', info: { name: 'carol' } }],
        ['pusher:member_removed', { id: 'carol', info: { name: 'carol' } }],
      ]);

      // the page leaves: bob sees it at once (an unsubscribe, not a lost connection)
      await t.tab.evaluate((c) => (window as unknown as { unsub(c: string): void }).unsub(c), channel);
      await eventually(() => bobSaw.length === 5, { timeoutMs: 5000, what: "bob sees alice's leave" });
      assert.deepEqual(bobSaw, [
        ['pusher:member_added', { id: 'alice', info: { name: 'alice' } }],
        ['client-typing', { from: 'alice' }],
        ['pusher:member_added', { id: 'carol', info: { name: 'carol' } }],
        ['pusher:member_removed', { id: 'carol', info: { name: 'carol' } }],
        ['pusher:member_removed', { id: 'alice', info: { name: 'alice' } }],
      ]);
      assert.deepEqual(t.pageErrors, []);
    } finally {
      await t.ctx.close();
    }
  });

  test(`${transportName}: pusher.signin() and server-to-user events`, async () => {
    const t = await openTab({ transports: [transportName], user: 'dana' });
    try {
      const signedIn = await t.tab.evaluate(() => (window as unknown as { signin(e: string[]): Promise<string> }).signin(['notice']));
      assert.equal(signedIn, 'dana');
      // The #server-to-user channel is subscribed right after signin_success.
      await eventually(
        async () => {
          await server.sendToUser('dana', 'notice', { text: 'probe' });
          return (await seen(t)).some((s) => s.user);
        },
        { timeoutMs: 5000, intervalMs: 300, what: 'a server-to-user event' },
      );
      await server.sendToUser('dana', 'notice', { text: 'hello dana' });
      await eventually(async () => (await seen(t)).some((s) => (s.data as { text: string }).text === 'hello dana'), { timeoutMs: 5000, what: 'the second one' });
      assert.deepEqual(t.pageErrors, []);
    } finally {
      await t.ctx.close();
    }
  });
}

test('xhr_streaming: past 256 KiB pusher-js replaces its stream; the session continues on the new request (same socket_id, nothing lost, in order)', async () => {
  const t = await openTab({ transports: ['xhr_streaming'] });
  try {
    const id = await socketId(t);
    await sub(t, 'bulk', ['chunk']);
    const pad = 'x'.repeat(9000);
    const count = 70; // ~630 KiB of frames: at least two replacements
    for (let i = 0; i < count; i++) assert.equal((await server.trigger('bulk', 'chunk', { i, pad })).status, 200);
    await eventually(async () => (await seenOn(t, 'bulk')).length === count, { timeoutMs: 10_000, what: `${count} events` });
    const got = (await seenOn(t, 'bulk')).map(([, d]) => (d as { i: number }).i);
    assert.deepEqual(got, [...Array(count).keys()]);
    assert.equal(await socketId(t), id, 'the same connection');
    assert.deepEqual((await states(t)).filter((s) => s !== 'connecting'), ['connected'], 'never disconnected');
    const streams = t.requests.filter((u) => u.includes('/xhr_streaming?'));
    assert.ok(streams.length >= 3, `the stream was replaced at least twice (${streams.length} requests)`);
    assert.equal(new Set(streams.map((u) => new URL(u).pathname)).size, 1, 'every stream request is for the same session');
  } finally {
    await t.ctx.close();
  }
});

test('xhr_streaming: a page that disappears is removed from presence after the grace period, not before', async () => {
  const channel = 'presence-lobby';
  const bob = await wsClient('bob');
  const bobSaw: [string, unknown][] = [];
  await wsSubscribe(bob, channel, ['pusher:member_added', 'pusher:member_removed'], bobSaw);
  const t = await openTab({ transports: ['xhr_streaming'], user: 'erin' });
  await sub(t, channel, []);
  await eventually(() => bobSaw.length === 1, { timeoutMs: 5000, what: "erin's join" });
  const closedAt = Date.now();
  await t.ctx.close();
  await eventually(() => bobSaw.length === 2, { timeoutMs: GRACE_MS + 5000, what: "erin's leave" });
  const after = Date.now() - closedAt;
  assert.deepEqual(bobSaw[1], ['pusher:member_removed', { id: 'erin', info: { name: 'erin' } }]);
  assert.ok(after >= GRACE_MS - 100, `member_removed after ${after} ms, not before the ${GRACE_MS} ms grace period`);
});
