// Message recovery through the plugin (recovery-plugin/) with stock pusher-js 8 in Node: the connection
// is cut (a TCP reset through a loopback proxy), the node is SIGKILLed and restarted, or the client
// reconnects to another node of a cluster, while events are published steadily; afterwards the app has
// seen every event exactly once and in order, or a `ripple:continuity_lost` event when the gap could
// not be filled. Clients without the plugin, and channels without recovery, behave as before.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { startNode, startRedis, freePort, type NodeHandle, type RedisHandle } from '../src/testing/harness.js';
import { eventually, sleep } from '../src/testing/eventually.js';
import { Pusher, type PusherClient } from '../src/testing/pusher-js.js';
import { startRedisProxy } from '../src/testing/redis-proxy.js';
import { withRecovery, CONTINUITY_LOST_EVENT, type ContinuityLost, type RecoveryOptions, type StorageLike } from '../recovery-plugin/src/index.js';
import { assertEachOnceInOrder, publishSteadily, publishUntil, sdk, CutProxies, type CutProxy, type Tick } from './recovery-support.js';

const app = { id: 'rec-js', key: 'rec-js-key', secret: 'rec-js-secret' };
const plainApp = { id: 'plain-js', key: 'plain-js-key', secret: 'plain-js-secret' };
const recovery = {
  historySize: 2000,
  historyTtl: 120,
  channels: [{ prefix: 'small-', historySize: 5 }, { prefix: '#server-to-user-small', historySize: 2 }, { prefix: 'off-', historySize: 0 }],
};
const apps = [{ ...app, recovery }, plainApp];

let redis: RedisHandle;
let single: NodeHandle;
const cluster: NodeHandle[] = [];
const started: NodeHandle[] = [];
const proxies = new CutProxies();
const clients: PusherClient[] = [];

const clusterNode = async (id: string, port?: number) => {
  const n = await startNode({ env: { REDIS_URL: redis.url, NODE_ID: id }, config: { apps }, port });
  started.push(n);
  return n;
};

before(async () => {
  redis = await startRedis();
  single = await startNode({ config: { apps } });
  started.push(single);
  cluster.push(...(await Promise.all(['js-a', 'js-b', 'js-c'].map((id) => clusterNode(id)))));
});

after(async () => {
  for (const c of clients) c.disconnect();
  await proxies.closeAll();
  await Promise.all(started.map((n) => n.kill()));
  await redis?.stop();
});

interface Client {
  pusher: PusherClient;
  /** Socket ids of every connection so far. */
  socketIds: string[];
  /** The outcome frames of recovering subscribes, as pusher-js decoded them (apps never see them on a channel). */
  outcomes: { channel?: string; recovered?: boolean; replayed?: number; reason?: string }[];
}

function connect(proxy: CutProxy, opts: { key?: string; plugin?: boolean; recovery?: RecoveryOptions; user?: string } = {}): Client {
  const server = sdk(single.port, app);
  const raw = new Pusher(opts.key ?? app.key, {
    cluster: 'mt1',
    wsHost: '127.0.0.1',
    wsPort: proxy.port,
    forceTLS: false,
    disableStats: true,
    enabledTransports: ['ws'],
    userAuthentication: { endpoint: '', transport: 'ajax', customHandler: ({ socketId }, cb) => cb(null, server.authenticateUser(socketId, { id: opts.user ?? 'nobody' })) },
  });
  const pusher = opts.plugin === false ? raw : withRecovery(raw, opts.recovery);
  clients.push(pusher);
  const c: Client = { pusher, socketIds: [], outcomes: [] };
  pusher.connection.bind('connected', () => c.socketIds.push(pusher.connection.socket_id));
  pusher.connection.bind('message', (e: { event: string; channel?: string; data: object }) => {
    if (e.event === 'pusher_internal:ripple_recovery') c.outcomes.push({ channel: e.channel, ...e.data });
  });
  return c;
}

interface Watch {
  ticks: Tick[];
  lost: ContinuityLost[];
  /** Everything the app can bind to on the channel, in order. */
  all: { event: string; data: unknown }[];
}

function watch(c: Client, channel: string): Watch {
  const ch = c.pusher.subscribe(channel);
  const w: Watch = { ticks: [], lost: [], all: [] };
  ch.bind_global((event: string, data: unknown) => w.all.push({ event, data }));
  ch.bind('tick', (t: Tick) => w.ticks.push(t));
  ch.bind(CONTINUITY_LOST_EVENT, (l: ContinuityLost) => w.lost.push(l));
  return w;
}

async function subscribed(c: Client, channel: string): Promise<void> {
  await eventually(() => c.pusher.channel(channel)?.subscribed === true, { timeoutMs: 5000, what: `${channel} subscribed` });
}

const untilTicks = (w: Watch, n: number, timeoutMs = 15_000) =>
  eventually(() => w.ticks.length >= n, { timeoutMs, what: () => `${n} ticks (have ${w.ticks.length}, last ${JSON.stringify(w.ticks.at(-1))})` });

/** Waits until the client is connected again after a cut, with a new socket id. */
const reconnected = (c: Client, connections: number) =>
  eventually(() => c.socketIds.length >= connections && c.pusher.connection.state === 'connected', { timeoutMs: 10_000, what: () => `connection ${connections} (state ${c.pusher.connection.state})` });

test('one node: a connection cut while events are published steadily, then pusher-js reconnects: every event once, in order', async (t) => {
  const proxy = await proxies.to(single);
  const c = connect(proxy);
  const w = watch(c, 'cut-one');
  await subscribed(c, 'cut-one');
  const publishing = publishSteadily(sdk(single.port, app), 'n0', 'cut-one', 'tick', 300, 5);
  await untilTicks(w, 40);
  proxy.cut();
  await publishing;
  await untilTicks(w, 300);
  await sleep(200);
  assertEachOnceInOrder(w.ticks, { n0: 300 });
  assert.equal(c.socketIds.length, 2, 'one reconnect, with a new socket id');
  assert.notEqual(c.socketIds[0], c.socketIds[1]);
  const [first, second] = c.outcomes;
  assert.deepEqual([c.outcomes.length, first.recovered, second.recovered], [2, undefined, true]);
  assert.ok(second.replayed! > 0, `the gap was filled by the replay (${second.replayed} events)`);
  t.diagnostic(`replayed after the cut: ${second.replayed} events`);
  assert.deepEqual(w.lost, []);
});

test('two nodes sharing Redis, publishers on both: the client\'s node is SIGKILLed and restarted, the client recovers everything from the shared history', async (t) => {
  const pairRedis = await startRedis();
  try {
    const port = await freePort();
    const node = (id: string, p?: number) => startNode({ env: { REDIS_URL: pairRedis.url, NODE_ID: id }, config: { apps }, port: p }).then((n) => (started.push(n), n));
    let [a, b] = await Promise.all([node('pair-a', port), node('pair-b')]);
    const proxy = await proxies.to(a);
    const c = connect(proxy);
    const w = watch(c, 'restart-pair');
    await subscribed(c, 'restart-pair');
    const fromB = publishSteadily(sdk(b.port, app), 'b', 'restart-pair', 'tick', 500, 6);
    await publishSteadily(sdk(a.port, app), 'a', 'restart-pair', 'tick', 40, 6);
    await untilTicks(w, 60);
    await a.kill(); // the client loses its connection with the node; b keeps publishing
    proxy.down(); // the client's reconnect waits until the node is back
    a = await node('pair-a', port);
    proxy.up();
    await reconnected(c, 2);
    await publishSteadily(sdk(a.port, app), 'a', 'restart-pair', 'tick', 40, 6, 40);
    await fromB;
    await untilTicks(w, 580);
    await sleep(200);
    assertEachOnceInOrder(w.ticks, { a: 80, b: 500 });
    assert.equal(c.outcomes.at(-1)?.recovered, true);
    assert.ok(c.outcomes.at(-1)!.replayed! > 0, 'events published while the node was down were replayed');
    t.diagnostic(`replayed after the restart: ${c.outcomes.at(-1)!.replayed} events`);
    assert.deepEqual(w.lost, []);
    void b;
  } finally {
    await pairRedis.stop();
  }
});

test('three nodes, publishers on every node: the client reconnects to another node, twice, and sees every event once, in order', async (t) => {
  const proxy = await proxies.to(cluster[0]);
  const c = connect(proxy);
  const w = watch(c, 'move-three');
  await subscribed(c, 'move-three');
  // The publishers go on until the third connection's recovery has answered and some live events came
  // after it, so that each move leaves a gap to fill whatever the reconnects' timing.
  let stop = false;
  const publishing = Promise.all(cluster.map((n, i) => publishUntil(sdk(n.port, app), `n${i}`, 'move-three', 'tick', 8, () => stop)));
  await untilTicks(w, 60);
  proxy.retarget(cluster[1].port);
  proxy.cut();
  await reconnected(c, 2);
  await eventually(() => c.outcomes.length >= 2, { timeoutMs: 10_000, what: () => `the second connection's outcome: ${JSON.stringify(c.outcomes)}` });
  const atSecond = w.ticks.length;
  await untilTicks(w, atSecond + 60);
  proxy.retarget(cluster[2].port);
  proxy.cut();
  await reconnected(c, 3);
  await eventually(() => c.outcomes.length >= 3, { timeoutMs: 10_000, what: () => `the third connection's outcome: ${JSON.stringify(c.outcomes)}` });
  const atThird = w.ticks.length;
  await untilTicks(w, atThird + 60);
  stop = true;
  const counts = await publishing;
  const total = counts.reduce((a, b) => a + b, 0);
  await untilTicks(w, total);
  await sleep(200);
  assertEachOnceInOrder(w.ticks, { n0: counts[0], n1: counts[1], n2: counts[2] });
  t.diagnostic(`recovery outcomes ${JSON.stringify(c.outcomes)} sockets ${JSON.stringify(c.socketIds)} lost ${JSON.stringify(w.lost)} all ${JSON.stringify(w.all.filter((e) => !e.event.endsWith('tick')).map((e) => e.event))}`);
  assert.deepEqual(c.outcomes.map((o) => o.recovered), [undefined, true, true]);
  assert.ok(c.outcomes.slice(1).every((o) => o.replayed! > 0), `each reconnect was recovered by a replay: ${JSON.stringify(c.outcomes)}`);
  t.diagnostic(`replayed after each move: ${c.outcomes.slice(1).map((o) => o.replayed).join(', ')} events`);
  assert.deepEqual(w.lost, []);
});

test('one node in memory, SIGKILLed and restarted: its history is gone, so the app gets ripple:continuity_lost (epoch_changed) and no replay', async () => {
  const port = await freePort();
  let n = await startNode({ config: { apps }, port });
  started.push(n);
  const proxy = await proxies.to(n);
  const c = connect(proxy);
  const w = watch(c, 'restart-memory');
  await subscribed(c, 'restart-memory');
  const server = () => sdk(n.port, app);
  await publishSteadily(server(), 'p', 'restart-memory', 'tick', 3, 0);
  await untilTicks(w, 3);
  proxy.down();
  await n.kill();
  n = await startNode({ config: { apps }, port });
  started.push(n);
  await publishSteadily(server(), 'p', 'restart-memory', 'tick', 4, 0, 3); // the new node keeps these, in a new epoch
  proxy.up();
  await reconnected(c, 2);
  await eventually(() => w.lost.length > 0, { timeoutMs: 5000, what: 'continuity_lost' });
  await publishSteadily(server(), 'p', 'restart-memory', 'tick', 2, 0, 7);
  await untilTicks(w, 5);
  await sleep(200);
  assert.deepEqual(w.lost, [{ reason: 'epoch_changed' }]);
  assert.deepEqual(w.ticks.map((t) => t.seq), [0, 1, 2, 7, 8], 'nothing of the gap, then live events');
  const i = w.all.findIndex((e) => e.event === CONTINUITY_LOST_EVENT);
  assert.deepEqual(w.all.slice(i - 1, i + 2).map((e) => e.event), ['pusher:subscription_succeeded', CONTINUITY_LOST_EVENT, 'tick'], 'told right after the resubscribe, before live events');
});

test('a gap longer than the channel\'s history: ripple:continuity_lost (trimmed), and none of the gap replayed', async () => {
  const proxy = await proxies.to(single);
  const c = connect(proxy);
  const w = watch(c, 'small-window');
  await subscribed(c, 'small-window');
  const server = sdk(single.port, app);
  await publishSteadily(server, 'p', 'small-window', 'tick', 2, 0);
  await untilTicks(w, 2);
  proxy.down();
  await publishSteadily(server, 'p', 'small-window', 'tick', 20, 0, 2); // the history keeps 5
  proxy.up();
  await reconnected(c, 2);
  await eventually(() => w.lost.length > 0, { timeoutMs: 5000, what: () => `continuity_lost: ${JSON.stringify(c.outcomes)} ${JSON.stringify(w.all)}` });
  await publishSteadily(server, 'p', 'small-window', 'tick', 1, 0, 22);
  await untilTicks(w, 3);
  await sleep(200);
  assert.deepEqual(w.lost, [{ reason: 'trimmed' }]);
  assert.deepEqual(w.ticks.map((t) => t.seq), [0, 1, 22]);
});

test('a frame that arrives twice, or an older one after a newer, reaches the app once', async () => {
  const proxy = await proxies.to(single);
  const c = connect(proxy);
  const w = watch(c, 'twice');
  await subscribed(c, 'twice');
  const frames: { data: string }[] = [];
  const transport = c.pusher.connection.connection.transport;
  transport.bind_global((event: string, m: { data: string }) => {
    if (event === 'message' && m.data.includes('"tick"')) frames.push(m);
  });
  await publishSteadily(sdk(single.port, app), 'p', 'twice', 'tick', 2, 0);
  await untilTicks(w, 2);
  // What a faulty replay would do: deliver the same frames again, the newest first.
  transport.emit('message', frames[1]);
  transport.emit('message', frames[0]);
  await sleep(100);
  assert.deepEqual(w.ticks.map((t) => t.seq), [0, 1]);
});

test('disconnect() then connect() recovers what was published meanwhile; after unsubscribe() a new subscribe starts afresh', async () => {
  const proxy = await proxies.to(single);
  const c = connect(proxy);
  const w = watch(c, 'pause');
  await subscribed(c, 'pause');
  const server = sdk(single.port, app);
  await publishSteadily(server, 'p', 'pause', 'tick', 2, 0);
  await untilTicks(w, 2);
  c.pusher.disconnect();
  await publishSteadily(server, 'p', 'pause', 'tick', 3, 0, 2);
  c.pusher.connect();
  await untilTicks(w, 5);
  assert.deepEqual([c.outcomes.at(-1)?.recovered, c.outcomes.at(-1)?.replayed], [true, 3]);

  c.pusher.unsubscribe('pause');
  await sleep(100);
  await publishSteadily(server, 'p', 'pause', 'tick', 2, 0, 5);
  const again = watch(c, 'pause');
  await subscribed(c, 'pause');
  await publishSteadily(server, 'p', 'pause', 'tick', 1, 0, 7);
  await untilTicks(again, 1);
  await sleep(200);
  assert.deepEqual(again.ticks.map((t) => t.seq), [7], 'nothing published while unsubscribed');
  assert.deepEqual([...w.lost, ...again.lost], []);
  assert.equal(c.outcomes.at(-1)?.recovered, undefined, 'the new subscribe carried no position');
});

test('a channel the server keeps no history for (position: null): exactly what a client without the plugin sees, across a reconnect', async () => {
  const proxy = await proxies.to(single);
  const withPlugin = connect(proxy);
  const without = connect(proxy, { plugin: false });
  const w1 = watch(withPlugin, 'off-room');
  const w2 = watch(without, 'off-room');
  await subscribed(withPlugin, 'off-room');
  await subscribed(without, 'off-room');
  const server = sdk(single.port, app);
  await publishSteadily(server, 'p', 'off-room', 'tick', 3, 0);
  await untilTicks(w1, 3);
  await untilTicks(w2, 3);
  proxy.down();
  await publishSteadily(server, 'p', 'off-room', 'tick', 2, 0, 3);
  proxy.up();
  await reconnected(withPlugin, 2);
  await reconnected(without, 2);
  await subscribed(withPlugin, 'off-room');
  await subscribed(without, 'off-room');
  await publishSteadily(server, 'p', 'off-room', 'tick', 2, 0, 5);
  await untilTicks(w1, 5);
  await untilTicks(w2, 5);
  await sleep(200);
  assert.deepEqual(w1.all, w2.all);
  assert.deepEqual(w1.ticks.map((t) => t.seq), [0, 1, 2, 5, 6], 'the gap is lost, as without recovery');
  assert.deepEqual(withPlugin.outcomes.map((o) => [o.recovered, o.reason]), [[undefined, 'disabled'], [undefined, 'disabled']]);
});

test('pusher-js without the plugin on an app with recovery sees exactly what it sees on an app without, also across a reconnect', async () => {
  const proxy = await proxies.to(single);
  const clientsOf = [connect(proxy, { plugin: false }), connect(proxy, { plugin: false, key: plainApp.key })];
  const seen = clientsOf.map(() => [] as { event: string; channel?: string; data: unknown }[]);
  clientsOf.forEach((c, i) =>
    c.pusher.connection.bind('message', (e: { event: string; channel?: string; data: unknown }) => {
      if (e.event !== 'pusher:connection_established') seen[i].push(e);
    }),
  );
  const watches = clientsOf.map((c) => watch(c, 'news'));
  for (const c of clientsOf) await subscribed(c, 'news');
  const servers = [sdk(single.port, app), sdk(single.port, plainApp)];
  const publish = (count: number, from: number) => Promise.all(servers.map((s) => publishSteadily(s, 'p', 'news', 'tick', count, 0, from)));
  await publish(3, 0);
  for (const w of watches) await untilTicks(w, 3);
  proxy.down();
  await publish(2, 3);
  proxy.up();
  for (const c of clientsOf) await reconnected(c, 2);
  for (const c of clientsOf) await subscribed(c, 'news');
  await publish(2, 5);
  for (const w of watches) await untilTicks(w, 5);
  await sleep(200);
  assert.deepEqual(seen[0], seen[1]);
  assert.deepEqual(watches[0].all, watches[1].all);
  assert.deepEqual(watches[0].ticks.map((t) => t.seq), [0, 1, 2, 5, 6]);
  assert.ok(!JSON.stringify(seen[0]).includes('ripple'), 'no ripple frame or field reaches a client that did not opt in');
});

test('storage: a new Pusher instance over the same storage (a page reload) recovers the gap; unsubscribe() removes the channel\'s entry', async () => {
  const proxy = await proxies.to(single);
  const entries = new Map<string, string>();
  const storage: StorageLike = { getItem: (k) => entries.get(k) ?? null, setItem: (k, v) => void entries.set(k, v), removeItem: (k) => void entries.delete(k) };
  const first = connect(proxy, { recovery: { storage } });
  const w1 = watch(first, 'reload');
  await subscribed(first, 'reload');
  const server = sdk(single.port, app);
  await publishSteadily(server, 'p', 'reload', 'tick', 3, 0);
  await untilTicks(w1, 3);
  first.pusher.disconnect(); // the page goes away
  await publishSteadily(server, 'p', 'reload', 'tick', 4, 0, 3);
  assert.match(entries.get(`ripple-recovery/${app.key}/channel/reload`) ?? '', /^[0-9a-z]+:3$/);
  assert.deepEqual(JSON.parse(entries.get(`ripple-recovery/${app.key}/socket-ids`)!), [first.socketIds[0]]);

  const second = connect(proxy, { recovery: { storage } });
  const w2 = watch(second, 'reload');
  await untilTicks(w2, 4);
  await sleep(200);
  assert.deepEqual(w2.ticks.map((t) => t.seq), [3, 4, 5, 6]);
  assert.deepEqual(second.outcomes.map((o) => [o.recovered, o.replayed]), [[true, 4]]);
  second.pusher.unsubscribe('reload');
  assert.equal(entries.has(`ripple-recovery/${app.key}/channel/reload`), false);
  assert.throws(() => withRecovery(connect(proxy, { plugin: false }).pusher, { storage: 'session' }), /sessionStorage/);
  assert.throws(() => withRecovery(second.pusher), /already has recovery/);
});

test('the user channel (#server-to-user-) recovers too: pusher.user.bind() sees every event once across a cut, or ripple:continuity_lost', async () => {
  const server = sdk(single.port, app);
  for (const user of ['rec-user', 'small-user']) {
    const proxy = await proxies.to(single);
    const c = connect(proxy, { user });
    const got: Tick[] = [];
    const lost: ContinuityLost[] = [];
    c.pusher.user.bind('tick', (t: Tick) => got.push(t));
    c.pusher.user.bind(CONTINUITY_LOST_EVENT, (l: ContinuityLost) => lost.push(l));
    c.pusher.signin();
    await eventually(() => c.outcomes.some((o) => o.channel === `#server-to-user-${user}`), { timeoutMs: 5000, what: 'the user channel subscribed' });
    const sendToUser = async (from: number, count: number) => {
      for (let seq = from; seq < from + count; seq++) await server.sendToUser(user, 'tick', { publisher: 'p', seq });
    };
    await sendToUser(0, 2);
    await eventually(() => got.length >= 2, { timeoutMs: 5000, what: 'user events' });
    proxy.down();
    await sendToUser(2, 3); // small-user's history keeps 2
    proxy.up();
    await reconnected(c, 2);
    await eventually(() => c.outcomes.length >= 2, { timeoutMs: 5000, what: 'the user channel subscribed again' });
    await sendToUser(5, 1);
    await eventually(() => got.some((t) => t.seq === 5), { timeoutMs: 5000, what: () => `user events after the reconnect: ${JSON.stringify(got)}` });
    await sleep(200);
    if (user === 'rec-user') {
      assertEachOnceInOrder(got, { p: 6 });
      assert.deepEqual(lost, []);
    } else {
      assert.deepEqual(got.map((t) => t.seq), [0, 1, 5]);
      assert.deepEqual(lost, [{ reason: 'trimmed' }]);
    }
  }
});

test("three nodes: the client's node loses its Redis subscription (CLIENT KILL TYPE pubsub) while the others publish; the app sees every event once, in order, and no ripple:continuity_lost", async () => {
  const proxy = await proxies.to(cluster[0]);
  const c = connect(proxy);
  const w = watch(c, 'kill-sub');
  await subscribed(c, 'kill-sub');
  const killer = new Redis(redis.port, '127.0.0.1');
  try {
    const fromB = publishSteadily(sdk(cluster[1].port, app), 'b', 'kill-sub', 'tick', 300, 3);
    const fromC = publishSteadily(sdk(cluster[2].port, app), 'c', 'kill-sub', 'tick', 300, 3);
    await untilTicks(w, 100);
    assert.ok(Number(await killer.call('CLIENT', 'KILL', 'TYPE', 'pubsub')) >= 3, 'every node\'s subscriber connection killed');
    await Promise.all([fromB, fromC]);
  } finally {
    killer.disconnect();
  }
  await untilTicks(w, 600);
  await sleep(300);
  assertEachOnceInOrder(w.ticks, { b: 300, c: 300 });
  assert.deepEqual(w.lost, []);
  assert.equal(c.socketIds.length, 1, 'the client stayed connected');
});

test('a recovering subscribe answered unavailable (the node cannot reach Redis): if the client drops again before any event, its next subscribe says ripple:continuity_lost again, never a silent gap', async () => {
  const link = await startRedisProxy(redis.port);
  const node = await startNode({ env: { REDIS_URL: link.url, NODE_ID: 'js-link' }, config: { apps } });
  started.push(node);
  try {
    const proxy = await proxies.to(node);
    const c = connect(proxy);
    const w = watch(c, 'outage-twice');
    await subscribed(c, 'outage-twice');
    const elsewhere = sdk(cluster[0].port, app);
    await publishSteadily(elsewhere, 'p', 'outage-twice', 'tick', 3, 0);
    await untilTicks(w, 3);
    link.cut('commands'); // the node reads no history; its subscription to the channel stays up
    proxy.cut();
    await reconnected(c, 2);
    await eventually(() => w.lost.length === 1, { timeoutMs: 5000, what: () => `continuity_lost after unavailable: ${JSON.stringify(c.outcomes)}` });
    assert.deepEqual(c.outcomes.at(-1), { channel: 'outage-twice', position: null, recovered: false, reason: 'unavailable' });
    proxy.down(); // gone again before any live event
    await publishSteadily(elsewhere, 'p', 'outage-twice', 'tick', 3, 0, 3);
    link.restore();
    await eventually(async () => (await fetch(`${node.url}/ready`)).status === 200, { timeoutMs: 10_000, what: 'the node reaches Redis again' });
    proxy.up();
    await reconnected(c, 3);
    await eventually(() => w.lost.length === 2, { timeoutMs: 5000, what: () => `a second continuity_lost: ${JSON.stringify(w.lost)} ${JSON.stringify(c.outcomes)}` });
    await publishSteadily(elsewhere, 'p', 'outage-twice', 'tick', 1, 0, 6);
    await untilTicks(w, 4);
    await sleep(200);
    assert.deepEqual(w.ticks.map((t) => t.seq), [0, 1, 2, 6], 'nothing of either gap');
    assert.deepEqual(w.lost, [{ reason: 'unavailable' }, { reason: 'unavailable' }]);
    const events = w.all.map((e) => e.event);
    assert.deepEqual(events.slice(events.lastIndexOf('pusher:subscription_succeeded')), ['pusher:subscription_succeeded', CONTINUITY_LOST_EVENT, 'tick'], 'told before live events');
  } finally {
    await node.kill();
    await link.close();
  }
});

test('withRecovery() on an instance that already has subscriptions: they are tracked from then on, so their first gap is ripple:continuity_lost (untracked) at worst, the next ones are recovered', async () => {
  const proxy = await proxies.to(single);
  const c = connect(proxy, { plugin: false });
  const w = watch(c, 'late-wrap');
  await subscribed(c, 'late-wrap');
  const server = sdk(single.port, app);
  await publishSteadily(server, 'p', 'late-wrap', 'tick', 2, 0);
  await untilTicks(w, 2);
  withRecovery(c.pusher);
  proxy.down();
  await publishSteadily(server, 'p', 'late-wrap', 'tick', 2, 0, 2);
  proxy.up();
  await reconnected(c, 2);
  await eventually(() => w.lost.length === 1, { timeoutMs: 5000, what: () => `continuity_lost for the untracked gap: ${JSON.stringify(c.outcomes)}` });
  assert.deepEqual(w.lost, [{ reason: 'untracked' }]);
  proxy.down();
  await publishSteadily(server, 'p', 'late-wrap', 'tick', 3, 0, 4);
  proxy.up();
  await reconnected(c, 3);
  await untilTicks(w, 5);
  await sleep(200);
  assert.deepEqual(w.ticks.map((t) => t.seq), [0, 1, 4, 5, 6], 'the second gap recovered');
  assert.deepEqual(w.lost, [{ reason: 'untracked' }]);
  assert.deepEqual(c.outcomes.map((o) => o.recovered), [undefined, true]);
});
