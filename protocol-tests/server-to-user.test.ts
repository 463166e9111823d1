// #server-to-user-<id> channels on the wire (issue "Deliver" item 2; spec §4.7, §9.3, §12.10): only
// connections signed in as exactly that user may subscribe or receive; events published to the channel
// through the REST API reach every connection signed in as the user, on one node and across nodes.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startNode, startRedis, type NodeHandle, type RedisHandle } from '../src/testing/harness.js';
import { sleep } from '../src/testing/eventually.js';
import { RawClient, signinAuth, type Frame } from '../src/testing/raw-client.js';
import { rest } from '../src/testing/sign-rest.js';

const app = { id: 'app-id', key: 'app-key', secret: 'app-secret' };
let redis: RedisHandle;
let single: NodeHandle;
let nodeA: NodeHandle;
let nodeB: NodeHandle;
const raws: RawClient[] = [];

before(async () => {
  redis = await startRedis();
  [single, nodeA, nodeB] = await Promise.all([
    startNode(),
    startNode({ env: { REDIS_URL: redis.url, NODE_ID: 'stu-a' } }),
    startNode({ env: { REDIS_URL: redis.url, NODE_ID: 'stu-b' } }),
  ]);
});

after(async () => {
  for (const r of raws) r.ws.terminate();
  await Promise.all([single, nodeA, nodeB].filter(Boolean).map((n) => n.kill()));
  await redis?.stop();
});

async function connect(n: NodeHandle): Promise<RawClient> {
  const c = await RawClient.connect(n.port, app.key);
  raws.push(c);
  return c;
}

/** Connects and signs in as `id` (spec §4.6). */
async function signedIn(n: NodeHandle, id: string): Promise<RawClient> {
  const c = await connect(n);
  const userData = JSON.stringify({ id });
  c.send({ event: 'pusher:signin', data: { auth: signinAuth(app.key, app.secret, c.socketId, userData), user_data: userData } });
  await c.nextEvent('pusher:signin_success');
  return c;
}

async function sendToUser(n: NodeHandle, userId: string, name: string, data: string) {
  const r = await rest(n.url, app, 'POST', `/apps/${app.id}/events`, { name, channels: [`#server-to-user-${userId}`], data });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.deepEqual(r.body, {});
}

/** An app event (not a pusher:/pusher_internal: frame such as a subscription_error) on this channel. */
const onChannel = (channel: string) => (f: Frame) => f.channel === channel && !f.event.startsWith('pusher');

test('the signed-in user subscribes to its own #server-to-user channel and receives events verbatim', async () => {
  const c = await signedIn(single, 'w-ann');
  const ok = await c.subscribe('#server-to-user-w-ann');
  assert.equal(ok.event, 'pusher_internal:subscription_succeeded');
  await sendToUser(single, 'w-ann', 'invoice', '{"total":12.5,"name":"ą§¶"}');
  const ev = await c.nextEvent('invoice');
  assert.deepEqual(ev, { event: 'invoice', channel: '#server-to-user-w-ann', data: '{"total":12.5,"name":"ą§¶"}' });
  assert.ok(await c.nothing((f) => f.event === 'invoice', 300), 'delivered once');
});

test('a connection signed in as another user gets pusher:subscription_error and none of the user\'s events', async () => {
  const ann = await signedIn(single, 'o-ann');
  const bob = await signedIn(single, 'o-bob');
  const res = await bob.subscribe('#server-to-user-o-ann');
  assert.equal(res.event, 'pusher:subscription_error');
  assert.equal(res.channel, '#server-to-user-o-ann');
  await sendToUser(single, 'o-ann', 'private-note', '"for ann only"');
  const got = await ann.nextEvent('private-note');
  assert.equal(got.data, '"for ann only"');
  assert.ok(await bob.nothing(onChannel('#server-to-user-o-ann'), 400), 'bob received nothing on ann\'s channel');
  // The refusal does not close the connection (spec §3.5): bob's own channel still works.
  await sendToUser(single, 'o-bob', 'note', '"for bob"');
  assert.equal((await bob.nextEvent('note', '#server-to-user-o-bob')).data, '"for bob"');
});

test('a connection that is not signed in gets pusher:subscription_error, receives nothing, and stays open', async () => {
  const ann = await signedIn(single, 'u-ann');
  const anon = await connect(single);
  const res = await anon.subscribe('#server-to-user-u-ann');
  assert.equal(res.event, 'pusher:subscription_error');
  assert.equal(res.channel, '#server-to-user-u-ann');
  await sendToUser(single, 'u-ann', 'secret', '"s"');
  await ann.nextEvent('secret');
  assert.ok(await anon.nothing(onChannel('#server-to-user-u-ann'), 400), 'the unsigned connection received nothing');
  assert.equal((await anon.subscribe('public-after-refusal')).event, 'pusher_internal:subscription_succeeded', 'still usable');
});

test('signing in later does not unlock a channel that was refused before, for another user id', async () => {
  const anon = await connect(single);
  assert.equal((await anon.subscribe('#server-to-user-l-ann')).event, 'pusher:subscription_error');
  const userData = '{"id":"l-bob"}';
  anon.send({ event: 'pusher:signin', data: { auth: signinAuth(app.key, app.secret, anon.socketId, userData), user_data: userData } });
  await anon.nextEvent('pusher:signin_success');
  await sendToUser(single, 'l-ann', 'x', '"x"');
  await sendToUser(single, 'l-bob', 'y', '"y"');
  assert.equal((await anon.nextEvent('y')).channel, '#server-to-user-l-bob');
  assert.ok(!anon.frames.some(onChannel('#server-to-user-l-ann')), 'nothing of l-ann\'s');
});

test('events reach every connection signed in as the user, even before it subscribes (spec §4.7), once each', async () => {
  const subscribedConn = await signedIn(single, 'm-ann');
  assert.equal((await subscribedConn.subscribe('#server-to-user-m-ann')).event, 'pusher_internal:subscription_succeeded');
  const notSubscribed = await signedIn(single, 'm-ann');
  const third = await signedIn(single, 'm-ann');
  const bob = await signedIn(single, 'm-bob');
  const anon = await connect(single);
  for (let i = 0; i < 3; i++) await sendToUser(single, 'm-ann', 'tick', JSON.stringify({ i }));
  for (const c of [subscribedConn, notSubscribed, third]) {
    for (let i = 0; i < 3; i++) {
      assert.deepEqual(await c.nextEvent('tick'), { event: 'tick', channel: '#server-to-user-m-ann', data: JSON.stringify({ i }) });
    }
  }
  await sleep(300);
  for (const c of [subscribedConn, notSubscribed, third]) assert.equal(c.frames.filter((f) => f.event === 'tick').length, 3);
  for (const c of [bob, anon]) assert.equal(c.frames.filter((f) => f.event === 'tick').length, 0);

  // After one of the user's connections closes, the others still receive.
  await third.close();
  await sendToUser(single, 'm-ann', 'tock', '"t"');
  await subscribedConn.nextEvent('tock');
  await notSubscribed.nextEvent('tock');
});

test('a trigger to several channels including a #server-to-user channel delivers to both audiences', async () => {
  const ann = await signedIn(single, 'mc-ann');
  const listener = await connect(single);
  await listener.subscribe('mc-news');
  const r = await rest(single.url, app, 'POST', `/apps/${app.id}/events`, { name: 'both', channels: ['mc-news', '#server-to-user-mc-ann'], data: '"d"' });
  assert.equal(r.status, 200);
  assert.deepEqual(await ann.nextEvent('both'), { event: 'both', channel: '#server-to-user-mc-ann', data: '"d"' });
  assert.deepEqual(await listener.nextEvent('both'), { event: 'both', channel: 'mc-news', data: '"d"' });
  assert.ok(await listener.nothing((f) => f.event === 'both', 300));
  assert.equal(ann.frames.filter((f) => f.event === 'both').length, 1, 'once for ann');
});

test('across two nodes: a #server-to-user event triggered on one node reaches the user\'s connections on both, once, and not others', async () => {
  const annA = await signedIn(nodeA, 'c-ann');
  const annB = await signedIn(nodeB, 'c-ann');
  assert.equal((await annB.subscribe('#server-to-user-c-ann')).event, 'pusher_internal:subscription_succeeded');
  const bobB = await signedIn(nodeB, 'c-bob');
  const anonA = await connect(nodeA);
  assert.equal((await anonA.subscribe('#server-to-user-c-ann')).event, 'pusher:subscription_error');
  await sleep(200); // let the nodes' Redis subscriptions settle

  await sendToUser(nodeA, 'c-ann', 'crossed', '"via a"');
  await sendToUser(nodeB, 'c-ann', 'crossed', '"via b"');
  for (const c of [annA, annB]) {
    assert.equal((await c.nextEvent('crossed', '#server-to-user-c-ann', 3000)).data, '"via a"');
    assert.equal((await c.nextEvent('crossed', '#server-to-user-c-ann', 3000)).data, '"via b"');
  }
  await sleep(300);
  for (const c of [annA, annB]) assert.equal(c.frames.filter((f) => f.event === 'crossed').length, 2, 'exactly once per event');
  for (const c of [bobB, anonA]) assert.equal(c.frames.filter(onChannel('#server-to-user-c-ann')).length, 0, 'not delivered to others');
});
