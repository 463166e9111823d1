// Watchlists (issue "Deliver" item 4; spec §4.6, §4.8): the watchlist in user_data gives the watcher
// the current online/offline status of those users right after sign-in, then each change; a user is
// online while signed in on at least one connection and offline after the last one closes. Checked
// through pusher-js's pusher.user.watchlist on one node and across two nodes sharing Redis.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startNode, startRedis, type NodeHandle, type RedisHandle } from '../src/testing/harness.js';
import { eventually, sleep } from '../src/testing/eventually.js';
import { RawClient, signinAuth } from '../src/testing/raw-client.js';
import { app, Clients, disconnect, sdk, signIn, type Client } from './support-users.js';

let redis: RedisHandle;
let single: NodeHandle;
let nodeA: NodeHandle;
let nodeB: NodeHandle;
const clients = new Clients();
const raws: RawClient[] = [];

before(async () => {
  redis = await startRedis();
  [single, nodeA, nodeB] = await Promise.all([
    startNode(),
    startNode({ env: { REDIS_URL: redis.url, NODE_ID: 'watch-a' } }),
    startNode({ env: { REDIS_URL: redis.url, NODE_ID: 'watch-b' } }),
  ]);
});

after(async () => {
  clients.closeAll();
  for (const r of raws) r.ws.terminate();
  await Promise.all([single, nodeA, nodeB].filter(Boolean).map((n) => n.kill()));
  await redis?.stop();
});

/**
 * Records what pusher-js emits on pusher.user.watchlist as "online:<id>" / "offline:<id>", one entry per
 * user per event (the server may group users into one event or not; the spec does not say).
 */
function watch(c: Client): string[] {
  const seen: string[] = [];
  for (const name of ['online', 'offline'] as const) {
    c.p.user.watchlist.bind(name, (e: { name: string; user_ids: string[] }) => {
      assert.equal(e.name, name);
      for (const id of e.user_ids) seen.push(`${name}:${id}`);
    });
  }
  return seen;
}

/** Waits until `seen` holds `count` entries, then a little longer, and returns the new entries sorted. */
async function settle(seen: string[], from: number, count: number, what: string, ms = 3000): Promise<string[]> {
  if (count > 0) await eventually(() => seen.length - from >= count, { timeoutMs: ms, what: () => `${what} (got ${JSON.stringify(seen.slice(from))})` });
  await sleep(400);
  return seen.slice(from).sort();
}

test('after sign-in the watcher gets its watchlist\'s current status, then online/offline changes per user (not per connection)', async () => {
  const server = sdk(single.port);
  const bob = clients.make(single.port, server, { user: { id: 'w-bob' } });
  const bobSeen = watch(bob);
  await signIn(bob);
  await sleep(100);

  const ann = clients.make(single.port, server, { user: { id: 'w-ann', watchlist: ['w-bob', 'w-carol', 'w-dave'] } });
  const seen = watch(ann);
  await signIn(ann);
  assert.deepEqual(await settle(seen, 0, 3, 'initial status'), ['offline:w-carol', 'offline:w-dave', 'online:w-bob']);

  // Carol comes online on two connections: one online event.
  let mark = seen.length;
  const carol1 = clients.make(single.port, server, { user: { id: 'w-carol' } });
  await signIn(carol1);
  assert.deepEqual(await settle(seen, mark, 1, 'carol online'), ['online:w-carol']);
  mark = seen.length;
  const carol2 = clients.make(single.port, server, { user: { id: 'w-carol' } });
  await signIn(carol2);
  assert.deepEqual(await settle(seen, mark, 0, 'second connection'), [], 'a second connection is not a new online');

  // Someone not on the watchlist: nothing.
  const eve = clients.make(single.port, server, { user: { id: 'w-eve' } });
  await signIn(eve);
  assert.deepEqual(await settle(seen, mark, 0, 'eve'), []);

  // Carol is online while one connection remains; offline after the last one closes.
  await disconnect(carol1);
  assert.deepEqual(await settle(seen, mark, 0, 'one of two closed'), []);
  await disconnect(carol2);
  assert.deepEqual(await settle(seen, mark, 1, 'carol offline'), ['offline:w-carol']);

  mark = seen.length;
  await disconnect(bob);
  assert.deepEqual(await settle(seen, mark, 1, 'bob offline'), ['offline:w-bob']);

  // A user without a watchlist never gets watchlist events.
  assert.deepEqual(bobSeen, []);
});

test('every watcher gets the changes of users on its own watchlist only', async () => {
  const server = sdk(single.port);
  const ann = clients.make(single.port, server, { user: { id: 'v-ann', watchlist: ['v-carol'] } });
  const frank = clients.make(single.port, server, { user: { id: 'v-frank', watchlist: ['v-carol', 'v-gus'] } });
  const gina = clients.make(single.port, server, { user: { id: 'v-gina', watchlist: ['v-gus'] } });
  const annSeen = watch(ann);
  const frankSeen = watch(frank);
  const ginaSeen = watch(gina);
  await Promise.all([signIn(ann), signIn(frank), signIn(gina)]);
  await settle(frankSeen, 0, 2, 'initial status');
  assert.deepEqual(annSeen.slice().sort(), ['offline:v-carol']);
  assert.deepEqual(frankSeen.slice().sort(), ['offline:v-carol', 'offline:v-gus']);
  assert.deepEqual(ginaSeen.slice().sort(), ['offline:v-gus']);

  const gus = clients.make(single.port, server, { user: { id: 'v-gus' } });
  await signIn(gus);
  assert.deepEqual(await settle(frankSeen, 2, 1, 'frank sees gus'), ['online:v-gus']);
  assert.deepEqual(ginaSeen.slice(1), ['online:v-gus']);
  assert.deepEqual(annSeen.slice(1), [], 'ann does not watch gus');
});

test('on the wire: pusher_internal:watchlist_events has no channel and lists {name, user_ids}', async () => {
  const c = await RawClient.connect(single.port, app.key);
  raws.push(c);
  const userData = JSON.stringify({ id: 'wire-watcher', watchlist: ['wire-nobody'] });
  c.send({ event: 'pusher:signin', data: { auth: signinAuth(app.key, app.secret, c.socketId, userData), user_data: userData } });
  await c.nextEvent('pusher:signin_success');
  const f = await c.nextEvent('pusher_internal:watchlist_events');
  assert.equal(f.channel, undefined);
  const data = typeof f.data === 'string' ? JSON.parse(f.data) : f.data;
  assert.deepEqual(data, { events: [{ name: 'offline', user_ids: ['wire-nobody'] }] });
});

test('numeric ids in a watchlist are watched as their string form', async () => {
  const c = await RawClient.connect(single.port, app.key);
  raws.push(c);
  const userData = JSON.stringify({ id: 'num-watcher', watchlist: ['num-a', 42] });
  c.send({ event: 'pusher:signin', data: { auth: signinAuth(app.key, app.secret, c.socketId, userData), user_data: userData } });
  await c.nextEvent('pusher:signin_success');
  const f = await c.nextEvent('pusher_internal:watchlist_events');
  const data = typeof f.data === 'string' ? JSON.parse(f.data) : f.data;
  assert.deepEqual(data, { events: [{ name: 'offline', user_ids: ['num-a', '42'] }] });
  const u = await RawClient.connect(single.port, app.key);
  raws.push(u);
  const ud = JSON.stringify({ id: '42' });
  u.send({ event: 'pusher:signin', data: { auth: signinAuth(app.key, app.secret, u.socketId, ud), user_data: ud } });
  const online = await c.nextEvent('pusher_internal:watchlist_events');
  const od = typeof online.data === 'string' ? JSON.parse(online.data) : online.data;
  assert.deepEqual(od, { events: [{ name: 'online', user_ids: ['42'] }] });
});

test('a watchlist over 100 ids: signin_success, pusher:error 4302, and only the first 100 are watched (spec §4.6)', async () => {
  const c = await RawClient.connect(single.port, app.key);
  raws.push(c);
  const ids = Array.from({ length: 101 }, (_, i) => `big-${i}`);
  const userData = JSON.stringify({ id: 'big-watcher', watchlist: ids });
  c.send({ event: 'pusher:signin', data: { auth: signinAuth(app.key, app.secret, c.socketId, userData), user_data: userData } });
  const ok = await c.nextEvent('pusher:signin_success');
  assert.equal((ok.data as { user_data: string }).user_data, userData);
  const err = await c.nextEvent('pusher:error');
  assert.equal((err.data as { code: number }).code, 4302);
  assert.equal(c.ws.readyState, c.ws.OPEN, 'the connection stays open');

  // Initial status: the first 100, all offline.
  const initial = await c.nextEvent('pusher_internal:watchlist_events');
  const events = (typeof initial.data === 'string' ? JSON.parse(initial.data) : initial.data).events as { name: string; user_ids: string[] }[];
  const listed = events.flatMap((e) => e.user_ids.map((id) => `${e.name}:${id}`)).sort();
  assert.deepEqual(listed, ids.slice(0, 100).map((id) => `offline:${id}`).sort());

  const server = sdk(single.port);
  const u101 = clients.make(single.port, server, { user: { id: 'big-100' } }); // the 101st id
  await signIn(u101);
  assert.ok(await c.nothing((f) => f.event === 'pusher_internal:watchlist_events', 400), 'the 101st id is not watched');
  const u100 = clients.make(single.port, server, { user: { id: 'big-99' } }); // the 100th id
  await signIn(u100);
  const online = await c.nextEvent('pusher_internal:watchlist_events');
  assert.deepEqual(typeof online.data === 'string' ? JSON.parse(online.data) : online.data, { events: [{ name: 'online', user_ids: ['big-99'] }] });
});

test('across two nodes: online/offline follow the user\'s connections on every node', async () => {
  const serverA = sdk(nodeA.port);
  const serverB = sdk(nodeB.port);
  const carolB = clients.make(nodeB.port, serverB, { user: { id: 'xw-carol' } });
  await signIn(carolB);
  await sleep(200);

  const annA = clients.make(nodeA.port, serverA, { user: { id: 'xw-ann', watchlist: ['xw-bob', 'xw-carol'] } });
  const henB = clients.make(nodeB.port, serverB, { user: { id: 'xw-hen', watchlist: ['xw-bob'] } });
  const ann = watch(annA);
  const hen = watch(henB);
  await Promise.all([signIn(annA), signIn(henB)]);
  assert.deepEqual(await settle(ann, 0, 2, 'ann initial status'), ['offline:xw-bob', 'online:xw-carol'], 'carol is online on the other node');
  assert.deepEqual(await settle(hen, 0, 1, 'hen initial status'), ['offline:xw-bob']);

  // Bob signs in on node b: both watchers (one per node) see it once.
  const bobB = clients.make(nodeB.port, serverB, { user: { id: 'xw-bob' } });
  await signIn(bobB);
  assert.deepEqual(await settle(ann, 2, 1, 'ann sees bob online (other node)'), ['online:xw-bob']);
  assert.deepEqual(await settle(hen, 1, 1, 'hen sees bob online (same node)'), ['online:xw-bob']);

  // A second connection on node a: still one user online, no event.
  const bobA = clients.make(nodeA.port, serverA, { user: { id: 'xw-bob' } });
  await signIn(bobA);
  assert.deepEqual(await settle(ann, 3, 0, 'second connection'), []);
  assert.deepEqual(await settle(hen, 2, 0, 'second connection'), []);

  // The connection on node b closes: bob is still online through node a.
  await disconnect(bobB);
  assert.deepEqual(await settle(ann, 3, 0, 'bob still online on a'), []);
  assert.deepEqual(await settle(hen, 2, 0, 'bob still online on a'), []);

  // The last one closes: offline, everywhere, once.
  await disconnect(bobA);
  assert.deepEqual(await settle(ann, 3, 1, 'ann sees bob offline'), ['offline:xw-bob']);
  assert.deepEqual(await settle(hen, 2, 1, 'hen sees bob offline'), ['offline:xw-bob']);

  // Carol (node b) leaves: ann on node a sees it.
  await disconnect(carolB);
  assert.deepEqual(await settle(ann, 4, 1, 'ann sees carol offline'), ['offline:xw-carol']);
});
