// pusher.terminateUserConnections (issue "Deliver" item 3; spec §4.9, §9.3): POST
// /apps/<id>/users/<user_id>/terminate_connections closes every connection signed in as the user, on
// every node, with pusher:error 4009 + close 4009 (pusher-js does not reconnect), and nothing else.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startNode, startRedis, type NodeHandle, type RedisHandle } from '../src/testing/harness.js';
import { eventually, sleep } from '../src/testing/eventually.js';
import { RawClient, signinAuth } from '../src/testing/raw-client.js';
import { rest } from '../src/testing/sign-rest.js';
import { app, Clients, connected, sdk, signIn, subscribed, type Client } from './support-users.js';

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
    startNode({ env: { REDIS_URL: redis.url, NODE_ID: 'term-a' } }),
    startNode({ env: { REDIS_URL: redis.url, NODE_ID: 'term-b' } }),
  ]);
});

after(async () => {
  clients.closeAll();
  for (const r of raws) r.ws.terminate();
  await Promise.all([single, nodeA, nodeB].filter(Boolean).map((n) => n.kill()));
  await redis?.stop();
});

async function assertTerminated(c: Client, what: string): Promise<void> {
  await eventually(() => c.p.connection.state === 'disconnected', { timeoutMs: 3000, what: () => `${what}: disconnected (state ${c.p.connection.state}, errors ${JSON.stringify(c.errors)})` });
  assert.deepEqual(c.errorCodes(), [4009, 4009], `${what}: pusher:error 4009 then close 4009`);
}

async function assertAlive(c: Client, what: string): Promise<void> {
  assert.equal(c.p.connection.state, 'connected', `${what}: still connected`);
  assert.deepEqual(c.errors, [], `${what}: no errors`);
}

test('terminateUserConnections closes all of the user\'s pusher-js connections with 4009 (no reconnect), and no one else\'s', async () => {
  const server = sdk(single.port);
  const ann1 = clients.make(single.port, server, { user: { id: 't-ann' }, presence: { user_id: 't-ann' } });
  const ann2 = clients.make(single.port, server, { user: { id: 't-ann' } });
  const bob = clients.make(single.port, server, { user: { id: 't-bob' }, presence: { user_id: 't-bob' } });
  // Joined a presence channel as "t-ann" but never signed in: not the user's connection (spec §4.9).
  const presenceOnly = clients.make(single.port, server, { presence: { user_id: 't-ann' } });
  const anon = clients.make(single.port, server);
  await Promise.all([signIn(ann1), signIn(ann2), signIn(bob), connected(presenceOnly), connected(anon)]);
  await Promise.all([subscribed(ann1, 'presence-term'), subscribed(bob, 'presence-term'), subscribed(presenceOnly, 'presence-term')]);
  const news = await Promise.all([bob, presenceOnly, anon].map((c) => subscribed(c, 'term-news')));

  const res = await server.terminateUserConnections('t-ann');
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), {});
  await Promise.all([assertTerminated(ann1, 'ann 1'), assertTerminated(ann2, 'ann 2')]);
  await sleep(1500);
  for (const c of [ann1, ann2]) {
    assert.equal(c.p.connection.state, 'disconnected', 'pusher-js does not reconnect after 4009');
    assert.equal(c.states.filter((s) => s === 'connected').length, 1);
  }
  for (const [c, what] of [[bob, 'bob'], [presenceOnly, 'presence-only t-ann'], [anon, 'anonymous']] as const) await assertAlive(c, what);

  // The survivors still get events.
  const got: unknown[][] = news.map(() => []);
  news.forEach((ch, i) => ch.bind('after', (d: unknown) => got[i].push(d)));
  await server.trigger('term-news', 'after', { ok: 1 });
  await eventually(() => got.every((g) => g.length >= 1), { timeoutMs: 3000, what: 'survivors got the event' });
  assert.deepEqual(got, [[{ ok: 1 }], [{ ok: 1 }], [{ ok: 1 }]]);
});

test('on the wire: pusher:error {code:4009} then close code 4009', async () => {
  const c = await RawClient.connect(single.port, app.key);
  raws.push(c);
  const userData = '{"id":"wire-term"}';
  c.send({ event: 'pusher:signin', data: { auth: signinAuth(app.key, app.secret, c.socketId, userData), user_data: userData } });
  await c.nextEvent('pusher:signin_success');
  const r = await rest(single.url, app, 'POST', `/apps/${app.id}/users/wire-term/terminate_connections`, {});
  assert.equal(r.status, 200);
  assert.deepEqual(r.body, {});
  const err = await c.nextEvent('pusher:error');
  assert.equal((err.data as { code: number }).code, 4009);
  assert.equal((await c.closed).code, 4009);
});

test('terminating a user with no connections answers {} and disturbs nobody', async () => {
  const server = sdk(single.port);
  const bob = clients.make(single.port, server, { user: { id: 'nobody-bob' } });
  await signIn(bob);
  const res = await server.terminateUserConnections('nobody-here');
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), {});
  await sleep(300);
  await assertAlive(bob, 'bob');
});

test('a terminated user can sign in again on a new connection', async () => {
  const server = sdk(single.port);
  const first = clients.make(single.port, server, { user: { id: 'again-ann' } });
  await signIn(first);
  await server.terminateUserConnections('again-ann');
  await assertTerminated(first, 'first');
  const second = clients.make(single.port, server, { user: { id: 'again-ann' } });
  const got: unknown[] = [];
  second.p.user.bind('welcome-back', (d: unknown) => got.push(d));
  await signIn(second);
  await eventually(() => second.p.user.serverToUserChannel?.subscribed === true, { timeoutMs: 3000, what: 'user channel' });
  await server.sendToUser('again-ann', 'welcome-back', { n: 1 });
  await eventually(() => got.length >= 1, { timeoutMs: 3000, what: 'event on the new connection' });
  assert.deepEqual(got, [{ n: 1 }]);
});

test('across two nodes: terminating through one node closes the user\'s connections on both, and only those', async () => {
  const serverA = sdk(nodeA.port);
  const serverB = sdk(nodeB.port);
  const annA = clients.make(nodeA.port, serverA, { user: { id: 'xt-ann' } });
  const annB = clients.make(nodeB.port, serverB, { user: { id: 'xt-ann' } });
  const bobA = clients.make(nodeA.port, serverA, { user: { id: 'xt-bob' } });
  const bobB = clients.make(nodeB.port, serverB, { user: { id: 'xt-bob' } });
  await Promise.all([signIn(annA), signIn(annB), signIn(bobA), signIn(bobB)]);
  await sleep(200);

  const res = await serverB.terminateUserConnections('xt-ann');
  assert.equal(res.status, 200);
  await Promise.all([assertTerminated(annA, 'ann on node a (terminated through b)'), assertTerminated(annB, 'ann on node b')]);
  await sleep(300);
  await assertAlive(bobA, 'bob on a');
  await assertAlive(bobB, 'bob on b');

  // And the other way round.
  const res2 = await serverA.terminateUserConnections('xt-bob');
  assert.equal(res2.status, 200);
  await Promise.all([assertTerminated(bobA, 'bob on a'), assertTerminated(bobB, 'bob on node b (terminated through a)')]);
});
