// Message recovery with Laravel Echo: `new Echo({ broadcaster: 'pusher', client: withRecovery(new
// Pusher(...)) })` on two nodes sharing Redis, with publishers on both. `.listen()` sees every event
// once and in order across a cut, a move to the other node and a restart of the client's node,
// `.listen('.ripple:continuity_lost')`
// hears about a gap that could not be filled, and toOthers() (the backend call carries the client's
// socket id as socket_id) never delivers a client its own events, before, during or after a reconnect.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import Echo from 'laravel-echo';
import type PusherServer from 'pusher';
import { startNode, startRedis, type NodeHandle, type RedisHandle } from '../src/testing/harness.js';
import { eventually, sleep } from '../src/testing/eventually.js';
import { Pusher } from '../src/testing/pusher-js.js';
import { withRecovery, type ContinuityLost } from '../recovery-plugin/src/index.js';
import { assertEachOnceInOrder, publishSteadily, sdk, CutProxies, type CutProxy, type Tick } from './recovery-support.js';

const app = { id: 'rec-echo', key: 'rec-echo-key', secret: 'rec-echo-secret' };
const recovery = { historySize: 2000, historyTtl: 120, channels: [{ prefix: 'small-', historySize: 3 }] };

let redis: RedisHandle;
const nodes: NodeHandle[] = [];
const proxies = new CutProxies();
const echoes: Echo<'pusher'>[] = [];
let backend: Server;
let backendUrl: string;

const clusterNode = (id: string, port?: number) => startNode({ env: { REDIS_URL: redis.url, NODE_ID: id }, config: { apps: [{ ...app, recovery }] }, port });

before(async () => {
  redis = await startRedis();
  nodes.push(...(await Promise.all(['echo-a', 'echo-b'].map((id) => clusterNode(id)))));
  // The app's backend: what Laravel's broadcast(...)->toOthers() does with the X-Socket-ID header Echo's
  // interceptors add to the app's requests.
  const server = sdk(nodes[1].port, app);
  backend = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      const { channel, tick } = JSON.parse(body) as { channel: string; tick: Tick };
      const socketId = req.headers['x-socket-id'];
      server.trigger(channel, 'message-sent', tick, typeof socketId === 'string' ? { socket_id: socketId } : undefined).then(
        () => res.writeHead(204).end(),
        (err: Error) => res.writeHead(500).end(err.message),
      );
    });
  });
  await new Promise<void>((resolve) => backend.listen(0, '127.0.0.1', resolve));
  const addr = backend.address();
  backendUrl = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}/messages`;
});

after(async () => {
  for (const e of echoes) e.disconnect();
  await proxies.closeAll();
  await new Promise<void>((resolve) => (backend ? backend.close(() => resolve()) : resolve()));
  await Promise.all(nodes.map((n) => n.kill()));
  await redis?.stop();
});

function echo(proxy: CutProxy, signer: PusherServer = sdk(nodes[0].port, app)): Echo<'pusher'> {
  const client = withRecovery(
    new Pusher(app.key, {
      cluster: 'mt1',
      wsHost: '127.0.0.1',
      wsPort: proxy.port,
      forceTLS: false,
      disableStats: true,
      enabledTransports: ['ws'],
      channelAuthorization: { endpoint: '', transport: 'ajax', customHandler: ({ socketId, channelName }, cb) => cb(null, signer.authorizeChannel(socketId, channelName)) },
    }),
  );
  // Echo types `client` as pusher-js's module namespace (see src/testing/pusher-js.ts).
  const e = new Echo<'pusher'>({ broadcaster: 'pusher', client: client as never });
  echoes.push(e);
  return e;
}

/** Socket ids Echo reported, one per connection. */
function socketIds(e: Echo<'pusher'>): string[] {
  const ids: string[] = [];
  e.connector.pusher.connection.bind('connected', () => ids.push(e.socketId()!));
  return ids;
}

function ready<C extends { subscribed(cb: CallableFunction): C }>(ch: C): Promise<C> {
  return new Promise((resolve) => ch.subscribed(() => resolve(ch)));
}

const until = (what: string | (() => string), check: () => boolean, timeoutMs = 15_000) => eventually(check, { timeoutMs, what });
const summary = (ticks: Tick[]) => {
  const by: Record<string, number[]> = {};
  for (const t of ticks) (by[t.publisher] ??= []).push(t.seq);
  return JSON.stringify(Object.fromEntries(Object.entries(by).map(([p, seqs]) => [p, { count: seqs.length, first: seqs.slice(0, 3), last: seqs.slice(-3), gaps: seqs.filter((q, i) => i > 0 && q !== seqs[i - 1] + 1).slice(0, 5) }])));
};

test('Echo .listen() on a public and a private channel: every event once, in order, across a cut and a move to the other node', async () => {
  const proxy = await proxies.to(nodes[0]);
  const e = echo(proxy);
  const ids = socketIds(e);
  const pub: Tick[] = [];
  const priv: Tick[] = [];
  const lost: ContinuityLost[] = [];
  await ready(e.channel('echo-ticks').listen('.tick', (t: Tick) => pub.push(t)).listen('.ripple:continuity_lost', (l: ContinuityLost) => lost.push(l)));
  await ready(e.private('echo-orders').listen('.tick', (t: Tick) => priv.push(t)).listen('.ripple:continuity_lost', (l: ContinuityLost) => lost.push(l)));
  const publishing = Promise.all(
    nodes.flatMap((n, i) => [
      publishSteadily(sdk(n.port, app), `n${i}`, 'echo-ticks', 'tick', 250, 8),
      publishSteadily(sdk(n.port, app), `n${i}`, 'private-echo-orders', 'tick', 250, 8),
    ]),
  );
  await until('40 public ticks', () => pub.length >= 40);
  proxy.cut();
  await until('second connection', () => ids.length >= 2 && e.connectionStatus() === 'connected');
  await until('250 public ticks', () => pub.length >= 250);
  proxy.retarget(nodes[1].port);
  proxy.cut();
  await until('third connection', () => ids.length >= 3 && e.connectionStatus() === 'connected');
  await publishing;
  await until(() => `every public tick: ${summary(pub)}`, () => pub.length >= 500);
  await until(() => `every private tick: ${summary(priv)}`, () => priv.length >= 500);
  await sleep(200);
  assertEachOnceInOrder(pub, { n0: 250, n1: 250 });
  assertEachOnceInOrder(priv, { n0: 250, n1: 250 });
  assert.deepEqual(lost, []);
  assert.equal(new Set(ids).size, 3);
});

test('Echo .listen(): the node the client is on is SIGKILLed and restarted while the other one publishes; every event once, in order', async () => {
  const proxy = await proxies.to(nodes[0]);
  const e = echo(proxy);
  const ids = socketIds(e);
  const got: Tick[] = [];
  const lost: ContinuityLost[] = [];
  await ready(e.channel('echo-restart').listen('.tick', (t: Tick) => got.push(t)).listen('.ripple:continuity_lost', (l: ContinuityLost) => lost.push(l)));
  const fromB = publishSteadily(sdk(nodes[1].port, app), 'b', 'echo-restart', 'tick', 400, 6);
  await publishSteadily(sdk(nodes[0].port, app), 'a', 'echo-restart', 'tick', 30, 6);
  await until('40 ticks', () => got.length >= 40);
  const port = nodes[0].port;
  await nodes[0].kill();
  proxy.down(); // the reconnect waits until the node is back
  nodes[0] = await clusterNode('echo-a', port);
  proxy.up();
  await until('second connection', () => ids.length >= 2 && e.connectionStatus() === 'connected');
  await publishSteadily(sdk(nodes[0].port, app), 'a', 'echo-restart', 'tick', 30, 6, 30);
  await fromB;
  await until(() => `every tick: ${summary(got)}`, () => got.length >= 460);
  await sleep(200);
  assertEachOnceInOrder(got, { a: 60, b: 400 });
  assert.deepEqual(lost, []);
});

test("toOthers(): the client's own events never reach it, sent before, while away (under its old socket id) or after a reconnect; the others get them all", async () => {
  const myProxy = await proxies.to(nodes[0]);
  const me = echo(myProxy);
  const observer = echo(await proxies.to(nodes[1]));
  const atMe: Tick[] = [];
  const atObserver: Tick[] = [];
  await ready(me.channel('echo-chat').listen('.message-sent', (t: Tick) => atMe.push(t)));
  await ready(observer.channel('echo-chat').listen('.message-sent', (t: Tick) => atObserver.push(t)));
  const post = async (e: Echo<'pusher'>, tick: Tick) => {
    const res = await fetch(backendUrl, { method: 'POST', headers: { 'x-socket-id': e.socketId()! }, body: JSON.stringify({ channel: 'echo-chat', tick }) });
    assert.equal(res.status, 204);
  };
  let mine = 0;
  let theirs = 0;
  const both = async (n: number) => {
    for (let i = 0; i < n; i++) {
      await post(me, { publisher: 'me', seq: mine++ });
      await post(observer, { publisher: 'observer', seq: theirs++ });
    }
  };
  await both(2);
  await until('the first events at the observer', () => atObserver.length >= 2);
  const before = me.socketId();
  myProxy.down();
  await until('me away', () => me.connectionStatus() !== 'connected');
  assert.equal(me.socketId(), before, 'while away, Echo still reports the socket id that was cut');
  await both(3); // sent while away: the backend excludes that socket id
  myProxy.up();
  await until('me back', () => me.connectionStatus() === 'connected' && me.socketId() !== before);
  await both(2);
  await until('every observer event at me', () => atMe.length >= 7);
  await until('every event of mine at the observer', () => atObserver.length >= 7);
  await sleep(300);
  assertEachOnceInOrder(atMe, { observer: 7 });
  assertEachOnceInOrder(atObserver, { me: 7 });
});

test(".listen('.ripple:continuity_lost') hears about a gap longer than the channel's history, and none of the gap is replayed", async () => {
  const proxy = await proxies.to(nodes[0]);
  const e = echo(proxy);
  const got: Tick[] = [];
  const lost: ContinuityLost[] = [];
  await ready(e.channel('small-feed').listen('.tick', (t: Tick) => got.push(t)).listen('.ripple:continuity_lost', (l: ContinuityLost) => lost.push(l)));
  const server = sdk(nodes[1].port, app);
  const seen: string[] = [];
  e.connector.pusher.connection.bind('message', (m: { event: string; channel?: string }) => seen.push(`${m.event}@${m.channel}`));
  await publishSteadily(server, 'p', 'small-feed', 'tick', 1, 0);
  await until(() => `the first tick (state ${e.connectionStatus()}, seen since ${JSON.stringify(seen)})`, () => got.length >= 1);
  proxy.down();
  await until('away', () => e.connectionStatus() !== 'connected');
  await publishSteadily(server, 'p', 'small-feed', 'tick', 10, 0, 1); // the history keeps 3
  proxy.up();
  await until('continuity_lost', () => lost.length >= 1);
  await publishSteadily(server, 'p', 'small-feed', 'tick', 1, 0, 11);
  await until('the live tick', () => got.length >= 2);
  await sleep(200);
  assert.deepEqual(lost, [{ reason: 'trimmed' }]);
  assert.deepEqual(got.map((t) => t.seq), [0, 11]);
});
