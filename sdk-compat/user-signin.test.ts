// User sign-in through unmodified pusher-js and the `pusher` server SDK (issue "Deliver" items 1, 2, 7;
// spec §4.6, §4.7): pusher.signin() with authenticateUser, signin_success, refused signatures (4009),
// the per-app "sign-in required" option and its timeout, and pusher.sendToUser reaching exactly the
// user's connections on one node and across two nodes sharing Redis.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import PusherServer from 'pusher';
import { startNode, startRedis, type NodeHandle, type RedisHandle } from '../src/testing/harness.js';
import { eventually, sleep } from '../src/testing/eventually.js';
import { RawClient, signinAuth } from '../src/testing/raw-client.js';
import { rest } from '../src/testing/sign-rest.js';
import { app, Clients, connected, sdk, signIn, subscribed, userChannelReady, type Client } from './support-users.js';

const strict = { id: 'strict-id', key: 'strict-key', secret: 'strict-secret' };
const relaxed = { id: 'relaxed-id', key: 'relaxed-key', secret: 'relaxed-secret' };

let redis: RedisHandle;
let single: NodeHandle;
let gated: NodeHandle;
let nodeA: NodeHandle;
let nodeB: NodeHandle;
const clients = new Clients();
const raws: RawClient[] = [];

async function raw(port: number, key = app.key): Promise<RawClient> {
  const c = await RawClient.connect(port, key);
  raws.push(c);
  return c;
}

before(async () => {
  redis = await startRedis();
  [single, gated, nodeA, nodeB] = await Promise.all([
    startNode(),
    startNode({
      config: {
        apps: [
          { ...strict, enableClientMessages: true, enableUserAuthentication: true, userAuthenticationTimeout: 1000 },
          { ...relaxed, enableClientMessages: true, enableUserAuthentication: false, userAuthenticationTimeout: 1000 },
        ],
      },
    }),
    startNode({ env: { REDIS_URL: redis.url, NODE_ID: 'signin-a' } }),
    startNode({ env: { REDIS_URL: redis.url, NODE_ID: 'signin-b' } }),
  ]);
});

after(async () => {
  clients.closeAll();
  for (const r of raws) r.ws.terminate();
  await Promise.all([single, gated, nodeA, nodeB].filter(Boolean).map((n) => n.kill()));
  await redis?.stop();
});

/** Events the app sees on pusher.user (sendToUser), in order. */
function userEvents(c: Client, event: string): unknown[] {
  const got: unknown[] = [];
  c.p.user.bind(event, (d: unknown) => got.push(d));
  return got;
}

/** Asserts the connection was refused the way spec §4.6/§4.9 recommend, as pusher-js reports it. */
async function assertRefused4009(c: Client, what: string): Promise<void> {
  await eventually(() => c.p.connection.state === 'disconnected', { timeoutMs: 5000, what: `${what}: disconnected` });
  // 4009 is in 4001–4099: pusher-js gives up and must not reconnect (spec §1.7).
  await sleep(1500);
  assert.equal(c.p.connection.state, 'disconnected', `${what}: pusher-js did not reconnect`);
  assert.deepEqual(c.errorCodes(), [4009, 4009], `${what}: pusher:error 4009, then close code 4009`);
  assert.equal(c.states.filter((s) => s === 'connected').length, 1, `${what}: connected once only`);
}

test('pusher.signin() with the SDK\'s authenticateUser: signin_success carries the same user_data and pusher-js subscribes to #server-to-user-<id>', async () => {
  const server = sdk(single.port);
  const user = { id: 'ann', user_info: { name: 'Ann', emoji: 'ą§¶™€' }, watchlist: ['bob'] };
  const c = clients.make(single.port, server, { user });
  const data = await signIn(c);
  assert.equal(data.user_data, JSON.stringify(user), 'user_data echoed byte for byte');
  assert.deepEqual(c.p.user.user_data, user);
  await userChannelReady(c);
  assert.equal(c.p.user.serverToUserChannel!.name, '#server-to-user-ann');
  assert.deepEqual(
    c.frames.filter((f) => f.event === 'pusher:subscription_error' || f.event === 'pusher:error'),
    [],
    'no errors for the own user channel',
  );
  assert.deepEqual(c.errors, []);
});

test('pusher.sendToUser reaches every connection signed in as that user exactly once, and no other connection', async () => {
  const server = sdk(single.port);
  const ann1 = clients.make(single.port, server, { user: { id: 'stu-ann' } });
  const ann2 = clients.make(single.port, server, { user: { id: 'stu-ann' } });
  const bob = clients.make(single.port, server, { user: { id: 'stu-bob' } });
  const anon = clients.make(single.port, server);
  const got1 = userEvents(ann1, 'notify');
  const got2 = userEvents(ann2, 'notify');
  const gotBob = userEvents(bob, 'notify');
  await Promise.all([signIn(ann1), signIn(ann2), signIn(bob), connected(anon)]);
  await Promise.all([userChannelReady(ann1), userChannelReady(ann2), userChannelReady(bob)]);

  const res = await server.sendToUser('stu-ann', 'notify', { n: 1, text: 'hello ann' });
  assert.equal(res.status, 200);
  await eventually(() => got1.length >= 1 && got2.length >= 1, { timeoutMs: 3000, what: 'both of ann\'s connections got the event' });
  await sleep(300);
  assert.deepEqual(got1, [{ n: 1, text: 'hello ann' }]);
  assert.deepEqual(got2, [{ n: 1, text: 'hello ann' }]);
  assert.deepEqual(gotBob, []);
  for (const other of [bob, anon]) {
    assert.deepEqual(other.frames.filter((f) => f.channel === '#server-to-user-stu-ann'), [], 'nothing on ann\'s channel elsewhere');
  }

  // Bob's turn: ann's connections stay untouched.
  await server.sendToUser('stu-bob', 'notify', { n: 2 });
  await eventually(() => gotBob.length >= 1, { timeoutMs: 3000, what: 'bob got his event' });
  await sleep(200);
  assert.deepEqual(gotBob, [{ n: 2 }]);
  assert.deepEqual(got1, [{ n: 1, text: 'hello ann' }]);
  assert.deepEqual(got2, [{ n: 1, text: 'hello ann' }]);
});

test('user ids outside the channel-name characters (e.g. an e-mail with a space) still get their #server-to-user events', async () => {
  const server = sdk(single.port);
  const odd = 'Ann Lee <ann+1@example.com>';
  const c = clients.make(single.port, server, { user: { id: odd } });
  const got = userEvents(c, 'notify');
  await signIn(c);
  await userChannelReady(c);
  const res = await server.sendToUser(odd, 'notify', { ok: true });
  assert.equal(res.status, 200);
  await eventually(() => got.length >= 1, { timeoutMs: 3000, what: 'the event for an id with spaces' });
  assert.deepEqual(got, [{ ok: true }]);
});

test('presence without channel_data: a signed-in pusher-js connection joins as its user (id and user_info from sign-in)', async () => {
  const server = sdk(single.port);
  // No `presence` spec: the authorizer signs socket_id:channel only, as pusher.authorizeChannel does
  // without presence data; pusher-js then takes the member from the sign-in (spec §4.3).
  const ann = clients.make(single.port, server, { user: { id: 'pres-ann', user_info: { name: 'Ann' } } });
  const bob = clients.make(single.port, server, { user: { id: 'pres-bob', user_info: { name: 'Bob' } } });
  await Promise.all([signIn(ann), signIn(bob)]);
  const chA = ann.p.subscribe('presence-signed');
  const added: { id: string; info: unknown }[] = [];
  chA.bind('pusher:member_added', (m: { id: string; info: unknown }) => added.push(m));
  await eventually(() => chA.subscribed, { timeoutMs: 5000, what: 'ann subscribed' });
  const chB = bob.p.subscribe('presence-signed');
  await eventually(() => chB.subscribed && added.length === 1, { timeoutMs: 5000, what: 'bob subscribed and announced' });
  assert.deepEqual(added, [{ id: 'pres-bob', info: { name: 'Bob' } }]);
  const members = chB as unknown as { members: { count: number; me: { id: string; info: unknown }; each(fn: (m: { id: string; info: unknown }) => void): void } };
  assert.equal(members.members.count, 2);
  assert.deepEqual(members.members.me, { id: 'pres-bob', info: { name: 'Bob' } });
  const seen: Record<string, unknown> = {};
  members.members.each((m) => (seen[m.id] = m.info));
  assert.deepEqual(seen, { 'pres-ann': { name: 'Ann' }, 'pres-bob': { name: 'Bob' } });
  const users = await server.get({ path: '/channels/presence-signed/users' });
  assert.deepEqual(((await users.json()) as { users: { id: string }[] }).users.map((u) => u.id).sort(), ['pres-ann', 'pres-bob']);
});

test('a forged, wrong-secret or replayed sign-in signature: pusher:error 4009, close 4009, no reconnect', async () => {
  const server = sdk(single.port);
  const wrongSecret = new PusherServer({ appId: app.id, key: app.key, secret: 'not-the-secret', host: '127.0.0.1', port: String(single.port), useTLS: false });
  const user = { id: 'mallory' };
  const victim = clients.make(single.port, server);
  const victimSocket = await connected(victim);
  const variants: [string, Client][] = [
    ['forged hex', clients.make(single.port, server, { userAuth: (_p, cb) => cb(null, { auth: `${app.key}:${'0'.repeat(64)}`, user_data: JSON.stringify(user) }) })],
    ['wrong secret', clients.make(single.port, server, { userAuth: ({ socketId }, cb) => cb(null, wrongSecret.authenticateUser(socketId, user)) })],
    // A valid signature, but for another connection's socket_id.
    ['replayed', clients.make(single.port, server, { userAuth: (_p, cb) => cb(null, server.authenticateUser(victimSocket, user)) })],
    // Signed for one user_data, sent with another.
    ['tampered user_data', clients.make(single.port, server, { userAuth: ({ socketId }, cb) => cb(null, { auth: server.authenticateUser(socketId, { id: 'someone' }).auth, user_data: JSON.stringify(user) }) })],
  ];
  await Promise.all(variants.map(([, c]) => connected(c)));
  for (const [, c] of variants) c.p.signin();
  await Promise.all(variants.map(([what, c]) => assertRefused4009(c, what)));
  for (const [what, c] of variants) {
    assert.equal(c.frames.filter((f) => f.event === 'pusher:signin_success').length, 0, `${what}: no signin_success`);
    assert.equal(c.p.user.user_data, null, `${what}: pusher-js is not signed in`);
  }
  assert.equal(victim.p.connection.state, 'connected', 'the connection whose socket_id was replayed is untouched');
});

test('a correctly signed user_data without a string id is refused with 4009 (spec §4.6)', async () => {
  const server = sdk(single.port);
  const cases = ['{"user_info":{"name":"x"}}', '{"id":""}', '{"id":42}', 'not json'].map((userData) => ({
    userData,
    c: clients.make(single.port, server, {
      userAuth: ({ socketId }, cb) => cb(null, { auth: signinAuth(app.key, app.secret, socketId, userData), user_data: userData }),
    }),
  }));
  await Promise.all(cases.map(({ c }) => connected(c)));
  for (const { c } of cases) c.p.signin();
  await Promise.all(cases.map(({ c, userData }) => assertRefused4009(c, userData)));
  for (const { c, userData } of cases) {
    assert.equal(c.frames.filter((f) => f.event === 'pusher:signin_success').length, 0, `${userData}: no signin_success`);
  }
});

test('on the wire: signin_success is {user_data} with the exact string; a bad signature is pusher:error 4009 then close 4009', async () => {
  const c = await raw(single.port);
  const userData = '{"id":"wire-ann","user_info":{"name":"Ann ą§"},"watchlist":[]}';
  c.send({ event: 'pusher:signin', data: { auth: signinAuth(app.key, app.secret, c.socketId, userData), user_data: userData } });
  const ok = await c.nextEvent('pusher:signin_success');
  assert.equal(typeof ok.data, 'object', 'data is an object (spec §4.6)');
  assert.equal((ok.data as { user_data: string }).user_data, userData);
  assert.equal(ok.channel, undefined);

  const bad = await raw(single.port);
  bad.send({ event: 'pusher:signin', data: { auth: signinAuth(app.key, 'wrong', bad.socketId, userData), user_data: userData } });
  const err = await bad.nextEvent('pusher:error');
  assert.equal((err.data as { code: number }).code, 4009);
  const closed = await bad.closed;
  assert.equal(closed.code, 4009);
  assert.equal(bad.frames.filter((f) => f.event === 'pusher:signin_success').length, 0);
});

test('a connection signed in as one user cannot sign in as another (spec §4.6)', async () => {
  const c = await raw(single.port);
  const ann = '{"id":"only-ann"}';
  const bob = '{"id":"only-bob"}';
  c.send({ event: 'pusher:signin', data: { auth: signinAuth(app.key, app.secret, c.socketId, ann), user_data: ann } });
  await c.nextEvent('pusher:signin_success');
  c.send({ event: 'pusher:signin', data: { auth: signinAuth(app.key, app.secret, c.socketId, bob), user_data: bob } });
  assert.ok(await c.nothing((f) => f.event === 'pusher:signin_success', 400), 'no second signin_success');
  const r = await rest(single.url, app, 'POST', `/apps/${app.id}/events`, { name: 'secret', channels: ['#server-to-user-only-bob'], data: '"for bob"' });
  assert.equal(r.status, 200);
  assert.ok(await c.nothing((f) => f.event === 'secret', 400), 'bob\'s events do not reach a connection signed in as ann');
});

test('sign-in required: an unsigned pusher-js connection is closed with 4009 after the app\'s timeout and does not reconnect', async () => {
  const server = sdk(gated.port, strict);
  const anon = clients.make(gated.port, server, { key: strict.key });
  const publicOnly = clients.make(gated.port, server, { key: strict.key });
  const t0 = Date.now();
  await Promise.all([connected(anon), connected(publicOnly)]);
  await subscribed(publicOnly, 'news'); // a public subscription is not authentication
  await eventually(() => anon.p.connection.state === 'disconnected', { timeoutMs: 4000, what: 'anon closed' });
  const elapsed = Date.now() - t0;
  assert.ok(elapsed >= 900, `closed only after the 1000 ms timeout (closed after ${elapsed} ms)`);
  await assertRefused4009(anon, 'unsigned');
  await assertRefused4009(publicOnly, 'public subscriber only');
});

test('sign-in required: on the wire the unsigned connection gets pusher:error 4009 then close 4009 after the timeout', async () => {
  const c = await raw(gated.port, strict.key);
  const t0 = Date.now();
  const err = await c.nextEvent('pusher:error', undefined, 4000);
  assert.ok(Date.now() - t0 >= 900, 'not before the timeout');
  assert.equal((err.data as { code: number }).code, 4009);
  assert.equal((await c.closed).code, 4009);
});

test('sign-in required: connections that sign in (or hold an authorized private subscription) in time stay open and usable', async () => {
  const server = sdk(gated.port, strict);
  const signed = clients.make(gated.port, server, { key: strict.key, user: { id: 'gated-ann' } });
  const privateSub = clients.make(gated.port, server, { key: strict.key });
  const got = userEvents(signed, 'hello');
  await signIn(signed);
  await connected(privateSub);
  await subscribed(privateSub, 'private-gated');
  await sleep(2500);
  assert.equal(signed.p.connection.state, 'connected');
  assert.deepEqual(signed.errors, []);
  assert.equal(privateSub.p.connection.state, 'connected', 'an authorized subscription counts as authenticated (spec §4.6)');
  assert.deepEqual(privateSub.errors, []);
  await userChannelReady(signed);
  await server.sendToUser('gated-ann', 'hello', { ok: true });
  await eventually(() => got.length >= 1, { timeoutMs: 3000, what: 'sendToUser after the timeout' });
  assert.deepEqual(got, [{ ok: true }]);
});

test('sign-in required is per app: another app on the same node keeps unsigned connections open past the timeout', async () => {
  const server = sdk(gated.port, relaxed);
  const anon = clients.make(gated.port, server, { key: relaxed.key });
  await connected(anon);
  await sleep(2500);
  assert.equal(anon.p.connection.state, 'connected');
  assert.deepEqual(anon.errors, []);
});

test('across two nodes: sendToUser through either node reaches the user\'s connections on both nodes once, and nobody else', async () => {
  const serverA = sdk(nodeA.port);
  const serverB = sdk(nodeB.port);
  const annA = clients.make(nodeA.port, serverA, { user: { id: 'x-ann' } });
  const annB = clients.make(nodeB.port, serverB, { user: { id: 'x-ann' } });
  const bobB = clients.make(nodeB.port, serverB, { user: { id: 'x-bob' } });
  const gotA = userEvents(annA, 'ping-user');
  const gotB = userEvents(annB, 'ping-user');
  const gotBob = userEvents(bobB, 'ping-user');
  await Promise.all([signIn(annA), signIn(annB), signIn(bobB)]);
  await Promise.all([userChannelReady(annA), userChannelReady(annB), userChannelReady(bobB)]);
  await sleep(200); // let the nodes' Redis subscriptions settle

  await serverA.sendToUser('x-ann', 'ping-user', { via: 'a' });
  await eventually(() => gotA.length >= 1 && gotB.length >= 1, { timeoutMs: 3000, what: () => `ann on both nodes got the event sent through node a: node a ${JSON.stringify(gotA)}, node b ${JSON.stringify(gotB)}` });
  await serverB.sendToUser('x-ann', 'ping-user', { via: 'b' });
  await eventually(() => gotA.length >= 2 && gotB.length >= 2, { timeoutMs: 3000, what: () => `ann on both nodes got the event sent through node b: node a ${JSON.stringify(gotA)}, node b ${JSON.stringify(gotB)}` });
  await sleep(300);
  assert.deepEqual(gotA, [{ via: 'a' }, { via: 'b' }]);
  assert.deepEqual(gotB, [{ via: 'a' }, { via: 'b' }]);
  assert.deepEqual(gotBob, []);
});
