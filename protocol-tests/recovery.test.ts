// Message recovery on the wire (docs/recovery.md): opted-in subscriptions get positions, a
// resubscribe with a position gets every missed event once and in order, or recovered:false and no
// partial replay; clients that do not opt in see byte-identical Pusher frames. One node in memory,
// and nodes sharing a Redis.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startNode, startRedis, type NodeHandle, type RedisHandle } from '../src/testing/harness.js';
import { eventually, sleep } from '../src/testing/eventually.js';
import { subscribeRecovering, type RecoveryOutcome } from '../src/testing/recovery.js';
import { RawClient, presenceAuth, privateAuth, signinAuth, type Frame } from '../src/testing/raw-client.js';
import { rest } from '../src/testing/sign-rest.js';

const app = { id: 'rec', key: 'rec-key', secret: 'rec-secret' };
const plainApp = { id: 'plain', key: 'plain-key', secret: 'plain-secret' };
const recovery = { historySize: 50, historyTtl: 60, channels: [{ prefix: 'small-', historySize: 3 }, { prefix: 'off-', historySize: 0 }] };
const apps = [
  { ...app, enableClientMessages: true, recovery },
  { ...plainApp, enableClientMessages: true },
];

let single: NodeHandle;
let redis: RedisHandle;
const cluster: NodeHandle[] = [];
const clients: RawClient[] = [];

before(async () => {
  redis = await startRedis();
  const clusterEnv = (id: string) => ({ env: { REDIS_URL: redis.url, NODE_ID: id }, config: { apps } });
  single = await startNode({ config: { apps } });
  cluster.push(...(await Promise.all(['rec-a', 'rec-b', 'rec-c'].map((id) => startNode(clusterEnv(id))))));
});

after(async () => {
  for (const c of clients) c.ws.terminate();
  await Promise.all([single, ...cluster].filter(Boolean).map((n) => n.kill()));
  await redis?.stop();
});

async function connect(n: NodeHandle, key = app.key): Promise<RawClient> {
  const c = await RawClient.connect(n.port, key);
  clients.push(c);
  return c;
}


async function trigger(n: NodeHandle, channel: string, name: string, data: string, socketId?: string, creds = app) {
  const res = await rest(n.url, creds, 'POST', `/apps/${creds.id}/events`, { name, channel, data, ...(socketId ? { socket_id: socketId } : {}) });
  assert.equal(res.status, 200, JSON.stringify(res.body));
}

const eventsOf = (c: RawClient, channel: string, name = 'msg') => c.frames.filter((f) => f.channel === channel && f.event === name);
const positionOf = (f: Frame) => (f as Frame & { ripple_position?: string }).ripple_position;
const serialOf = (p: string | null | undefined) => Number(String(p).split(':')[1]);

async function until(c: RawClient, channel: string, count: number, name = 'msg', ms = 5000): Promise<Frame[]> {
  const deadline = Date.now() + ms;
  while (eventsOf(c, channel, name).length < count) {
    if (Date.now() > deadline) throw new Error(`${channel}: ${eventsOf(c, channel, name).length} of ${count} ${name} events: ${JSON.stringify(c.frames.slice(-5))}`);
    await sleep(20);
  }
  return eventsOf(c, channel, name);
}

test('clients that do not opt in get byte-identical frames whether or not the app keeps a history', async () => {
  const a = await connect(single, app.key);
  const b = await connect(single, plainApp.key);
  await a.subscribe('same');
  await b.subscribe('same');
  const from = [a.raw.length, b.raw.length];
  await trigger(single, 'same', 'msg', '{"x":1}');
  await trigger(single, 'same', 'msg', '{"x":1}', undefined, plainApp);
  await until(a, 'same', 1);
  await until(b, 'same', 1);
  await sleep(100);
  assert.deepEqual(a.raw.slice(from[0]), b.raw.slice(from[1]));
  assert.deepEqual(a.raw.slice(from[0]), ['{"event":"msg","channel":"same","data":"{\\"x\\":1}"}']);
});

test('an opted-in subscribe gets the channel position, then live events carry theirs; pusher-js fields are untouched', async () => {
  const c = await connect(single);
  const outcome = await subscribeRecovering(c, 'fresh');
  assert.match(String(outcome.position), /^[0-9a-z]+:0$/);
  assert.equal(outcome.recovered, undefined);
  const i = c.frames.findIndex((f) => f.event === 'pusher_internal:subscription_succeeded' && f.channel === 'fresh');
  const j = c.frames.findIndex((f) => f.event === 'pusher_internal:ripple_recovery' && f.channel === 'fresh');
  assert.ok(i >= 0 && j > i, 'the outcome follows subscription_succeeded');
  await trigger(single, 'fresh', 'msg', 'one');
  const [f] = await until(c, 'fresh', 1);
  const epoch = String(outcome.position).split(':')[0];
  assert.deepEqual(f, { event: 'msg', channel: 'fresh', data: 'one', ripple_position: `${epoch}:1` });
});

for (const where of ['one node', 'a cluster (moving to another node)'] as const) {
  test(`${where}: a resubscribe with the last position gets every missed event once, in order, then live events`, async () => {
    const [first, second] = where === 'one node' ? [single, single] : [cluster[0], cluster[1]];
    const channel = `gap-${where === 'one node' ? 1 : 2}`;
    const c1 = await connect(first);
    await subscribeRecovering(c1, channel);
    for (let i = 1; i <= 3; i++) await trigger(first, channel, 'msg', `before-${i}`);
    const seen = await until(c1, channel, 3);
    const last = positionOf(seen[2])!;
    c1.ws.terminate();
    // Published while the client is away, from every node of the cluster.
    for (let i = 1; i <= 6; i++) await trigger(where === 'one node' ? single : cluster[i % 3], channel, 'msg', `missed-${i}`);
    const c2 = await connect(second);
    const outcome = await subscribeRecovering(c2, channel, { position: last, socketIds: [c1.socketId] });
    assert.deepEqual({ ...outcome, position: serialOf(outcome.position) }, { position: 9, recovered: true, replayed: 6 });
    await trigger(second, channel, 'msg', 'live');
    const got = await until(c2, channel, 7);
    assert.deepEqual(got.map((f) => f.data), ['missed-1', 'missed-2', 'missed-3', 'missed-4', 'missed-5', 'missed-6', 'live']);
    assert.deepEqual(got.map((f) => serialOf(positionOf(f))), [4, 5, 6, 7, 8, 9, 10]);
    const k = c2.frames.findIndex((f) => f.event === 'pusher_internal:ripple_recovery');
    assert.ok(c2.frames.indexOf(got[5]) < k && k < c2.frames.indexOf(got[6]), 'replay, then the outcome, then live events');
    await sleep(200);
    assert.equal(eventsOf(c2, channel).length, 7, 'nothing twice');
  });
}

test('a gap the history cannot fill entirely is never filled partly: recovered false with the reason, no replay', async () => {
  const c1 = await connect(single);
  await subscribeRecovering(c1, 'small-room');
  await trigger(single, 'small-room', 'msg', 'seen');
  const [seen] = await until(c1, 'small-room', 1);
  c1.ws.terminate();
  for (let i = 0; i < 5; i++) await trigger(single, 'small-room', 'msg', `lost-${i}`); // the history keeps 3
  const c2 = await connect(single);
  const trimmed = await subscribeRecovering(c2, 'small-room', { position: positionOf(seen) });
  assert.deepEqual([trimmed.recovered, trimmed.reason, serialOf(trimmed.position)], [false, 'trimmed', 6]);
  await sleep(150);
  assert.deepEqual(eventsOf(c2, 'small-room'), [], 'no partial replay');

  const c3 = await connect(single);
  const epoch = await subscribeRecovering(c3, 'small-room', { position: 'zzzzzz:6' });
  assert.deepEqual([epoch.recovered, epoch.reason], [false, 'epoch_changed']);
  const garbage = await subscribeRecovering(await connect(single), 'gap-garbage', { position: 'not a position' });
  assert.deepEqual([garbage.recovered, garbage.reason], [false, 'epoch_changed']);
  const off = await subscribeRecovering(await connect(single), 'off-topic', { position: 'abc:1' });
  assert.deepEqual(off, { position: null, recovered: false, reason: 'disabled' });
});

test('exclusion survives the socket id change: an event the client excluded under its old socket id is not replayed', async () => {
  const c1 = await connect(single);
  await subscribeRecovering(c1, 'excl');
  await trigger(single, 'excl', 'msg', 'start');
  const [start] = await until(c1, 'excl', 1);
  const oldId = c1.socketId;
  c1.ws.terminate();
  await trigger(single, 'excl', 'msg', 'mine', oldId); // toOthers() from this client's backend call
  await trigger(single, 'excl', 'msg', 'theirs');
  const c2 = await connect(single);
  const outcome = await subscribeRecovering(c2, 'excl', { position: positionOf(start), socketIds: [oldId] });
  assert.deepEqual([outcome.recovered, outcome.replayed], [true, 1]);
  assert.deepEqual((await until(c2, 'excl', 1)).map((f) => f.data), ['theirs']);
});

test('presence channels replay events, not member changes; cache channels skip their cache replay when recovered', async () => {
  const member = (id: string) => JSON.stringify({ user_id: id });
  const c1 = await connect(single);
  await subscribeRecovering(c1, 'presence-rec', { auth: presenceAuth(app.key, app.secret, c1.socketId, 'presence-rec', member('u1')), channelData: member('u1') });
  await trigger(single, 'presence-rec', 'msg', 'p1');
  const [p1] = await until(c1, 'presence-rec', 1);
  c1.ws.terminate();
  const other = await connect(single);
  await other.subscribe('presence-rec', presenceAuth(app.key, app.secret, other.socketId, 'presence-rec', member('u2')), member('u2'));
  await trigger(single, 'presence-rec', 'msg', 'p2');
  const c2 = await connect(single);
  const outcome = await subscribeRecovering(c2, 'presence-rec', { position: positionOf(p1), auth: presenceAuth(app.key, app.secret, c2.socketId, 'presence-rec', member('u1')), channelData: member('u1') });
  assert.deepEqual([outcome.recovered, outcome.replayed], [true, 1]);
  const succeeded = c2.frames.find((f) => f.event === 'pusher_internal:subscription_succeeded' && f.channel === 'presence-rec')!;
  assert.deepEqual(JSON.parse(succeeded.data as string).presence.ids.sort(), ['u1', 'u2']);
  assert.deepEqual(c2.frames.filter((f) => f.channel === 'presence-rec' && f.event.startsWith('pusher_internal:member')), [], 'no member events replayed');
  assert.deepEqual((await until(c2, 'presence-rec', 1)).map((f) => f.data), ['p2']);

  const k1 = await connect(single);
  await subscribeRecovering(k1, 'cache-rec');
  await trigger(single, 'cache-rec', 'msg', 'cached-1');
  const [cached] = await until(k1, 'cache-rec', 1);
  k1.ws.terminate();
  const k2 = await connect(single);
  const recovered = await subscribeRecovering(k2, 'cache-rec', { position: positionOf(cached) });
  assert.equal(recovered.recovered, true);
  await sleep(200);
  assert.deepEqual(k2.frames.filter((f) => f.channel === 'cache-rec' && (f.event === 'msg' || f.event === 'pusher:cache_miss')), [], 'up to date: no cache replay');
  const k3 = await connect(single);
  await subscribeRecovering(k3, 'cache-rec');
  assert.deepEqual((await until(k3, 'cache-rec', 1)).map((f) => f.data), ['cached-1'], 'a first subscribe still gets the cached event');
});

test('cluster: publishers on every node, subscribers on every node see the same events at the same positions in the same order', async () => {
  const subs = await Promise.all(cluster.map((n) => connect(n)));
  for (const s of subs) await subscribeRecovering(s, 'agree');
  await sleep(100);
  await Promise.all(Array.from({ length: 30 }, (_, i) => trigger(cluster[i % 3], 'agree', 'msg', `e${i}`)));
  const seen = await Promise.all(subs.map((s) => until(s, 'agree', 30)));
  const sequences = seen.map((fs) => fs.map((f) => `${positionOf(f)}=${f.data}`));
  assert.deepEqual(sequences[1], sequences[0]);
  assert.deepEqual(sequences[2], sequences[0]);
  assert.deepEqual(seen[0].map((f) => serialOf(positionOf(f))), Array.from({ length: 30 }, (_, i) => i + 1));
});

test('history over REST: signed, paged by position, 410 for a position of another epoch, 404 for a channel without history', async () => {
  for (let i = 1; i <= 5; i++) await trigger(single, 'paged', 'msg', `h${i}`);
  const all = await rest(single.url, app, 'GET', `/apps/${app.id}/channels/paged/history`, undefined, { limit: '2' });
  assert.equal(all.status, 200, JSON.stringify(all.body));
  const body = all.body as { position: string; events: { position: string; event: string; data: string }[]; next: string | null };
  assert.deepEqual(body.events.map((e) => [serialOf(e.position), e.event, e.data]), [[1, 'msg', 'h1'], [2, 'msg', 'h2']]);
  assert.equal(serialOf(body.position), 5);
  const page2 = await rest(single.url, app, 'GET', `/apps/${app.id}/channels/paged/history`, undefined, { after: body.next!, limit: '10' });
  assert.deepEqual((page2.body as typeof body).events.map((e) => e.data), ['h3', 'h4', 'h5']);
  assert.equal((page2.body as typeof body).next, null);
  assert.equal((await rest(single.url, app, 'GET', `/apps/${app.id}/channels/paged/history`, undefined, { after: 'zz:1' })).status, 410);
  assert.equal((await rest(single.url, app, 'GET', `/apps/${app.id}/channels/off-x/history`)).status, 404);
  assert.equal((await rest(single.url, { ...app, secret: 'wrong' }, 'GET', `/apps/${app.id}/channels/paged/history`)).status, 401);
});

test('#server-to-user- channels recover too: a signed-in client that resubscribes with its position gets what was sent to its user meanwhile', async () => {
  const userData = JSON.stringify({ id: 'rec-user' });
  const channel = '#server-to-user-rec-user';
  async function signedIn(): Promise<RawClient> {
    const c = await connect(single);
    c.send({ event: 'pusher:signin', data: { user_data: userData, auth: signinAuth(app.key, app.secret, c.socketId, userData) } });
    await c.nextEvent('pusher:signin_success');
    return c;
  }
  const c1 = await signedIn();
  await subscribeRecovering(c1, channel);
  await trigger(single, channel, 'msg', 'u1');
  const [u1] = await until(c1, channel, 1);
  assert.ok(positionOf(u1), 'the user channel carries positions once opted in');
  c1.ws.terminate();
  await trigger(single, channel, 'msg', 'u2');
  const c2 = await signedIn();
  const outcome = await subscribeRecovering(c2, channel, { position: positionOf(u1) });
  assert.deepEqual([outcome.recovered, outcome.replayed], [true, 1]);
  await trigger(single, channel, 'msg', 'u3');
  assert.deepEqual((await until(c2, channel, 2)).map((f) => f.data), ['u2', 'u3']);
});

test('cluster: an event published right after subscription_succeeded reaches a subscribe that replays nothing (a first one, or a gap not filled)', async () => {
  // The subscribe's history read can come after such an event was numbered (here: queued behind the
  // reads of many other subscribes): the event is the client's first live one, to be delivered, not
  // skipped as if a replay had held it.
  const c = await connect(cluster[0]);
  const channels = Array.from({ length: 990 }, (_, i) => `right-after-${i}`); // under maxChannelsPerConnection
  channels.forEach((channel, i) => c.send({ event: 'pusher:subscribe', data: { channel, auth: '', ripple_recovery: i % 2 ? { position: 'zzzzzz:1' } : {} } }));
  const last = channels.slice(-100);
  // Subscribes are handled in order: once the last one succeeded, every one of them has begun.
  await c.nextEvent('pusher_internal:subscription_succeeded', channels.at(-1));
  const res = await rest(cluster[1].url, app, 'POST', `/apps/${app.id}/events`, { name: 'msg', channels: last, data: 'live' });
  assert.equal(res.status, 200);
  // Waited for, not timed: on a loaded machine or a Redis Cluster the event may take longer than usual.
  await eventually(() => last.every((channel) => eventsOf(c, channel).length > 0), { timeoutMs: 5000, what: 'the live event on every channel' }).catch(() => {});
  await sleep(200); // a second copy would have come by now
  const missed = last.filter((channel) => eventsOf(c, channel).length !== 1);
  assert.deepEqual(missed, [], `outcome of the first: ${JSON.stringify(c.frames.find((f) => f.event === 'pusher_internal:ripple_recovery' && f.channel === missed[0]))}`);
  c.ws.terminate();
});

test('the names the server speaks are refused on every input: REST and batch answer 400 and publish nothing, a client frame gets pusher:error and is relayed to no one', async () => {
  const c = await connect(single);
  await subscribeRecovering(c, 'private-names', { auth: privateAuth(app.key, app.secret, c.socketId, 'private-names') });
  const other = await connect(single);
  await other.subscribe('private-names', privateAuth(app.key, app.secret, other.socketId, 'private-names'));
  const outcomeData = JSON.stringify({ position: 'zz:1', recovered: false, reason: 'trimmed' });
  for (const name of ['pusher_internal:ripple_recovery', 'pusher_internal:member_added', 'pusher_internal:subscription_succeeded', 'pusher:cache_miss']) {
    const res = await rest(single.url, app, 'POST', `/apps/${app.id}/events`, { name, channel: 'private-names', data: outcomeData });
    assert.equal(res.status, 400, `${name}: ${JSON.stringify(res.body)}`);
    assert.match(String(res.body.error), name === 'pusher_internal:ripple_recovery' ? /ripple_recovery.*only the server sends/ : /'pusher' namespace is reserved/);
  }
  const batch = await rest(single.url, app, 'POST', `/apps/${app.id}/batch_events`, {
    batch: [
      { name: 'msg', channel: 'private-names', data: 'fine' },
      { name: 'pusher_internal:ripple_recovery', channel: 'private-names', data: outcomeData },
    ],
  });
  assert.equal(batch.status, 400);
  assert.match(String(batch.body.error), /batch\[1\]/);
  other.send({ event: 'pusher_internal:ripple_recovery', channel: 'private-names', data: outcomeData });
  const error = await other.nextEvent('pusher:error');
  assert.match(JSON.stringify(error.data), /pusher_internal:ripple_recovery/);
  // A name that only looks like Pusher's is the app's own, as in every Pusher-compatible server but hosted Pusher (spec §9.3).
  await trigger(single, 'private-names', 'pusher-notification', 'ok');
  await until(c, 'private-names', 1, 'pusher-notification');
  await sleep(200);
  assert.deepEqual(
    c.frames.filter((f) => f.channel === 'private-names' && f.event !== 'pusher_internal:subscription_succeeded').map((f) => f.event),
    ['pusher_internal:ripple_recovery', 'pusher-notification'],
    'the subscribe\'s own outcome, then the one event published',
  );
  assert.deepEqual(other.frames.filter((f) => f.channel === 'private-names' && f.event !== 'pusher_internal:subscription_succeeded').map((f) => f.event), ['pusher-notification']);
});
