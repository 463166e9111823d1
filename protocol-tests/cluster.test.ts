// Several nodes on one Redis behave as one server: delivery exactly once, exclusion, client events and
// presence across nodes, node crashes, Redis restarts and graceful shutdown (issue: many nodes as one).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Pusher } from '../src/testing/pusher-js.js';
import PusherServer from 'pusher';
import { startNode, startRedis, type NodeHandle, type RedisHandle } from '../src/testing/harness.js';
import { eventually, sleep } from '../src/testing/eventually.js';
import { RawClient, presenceAuth, privateAuth } from '../src/testing/raw-client.js';
import { rest } from '../src/testing/sign-rest.js';

const app = { id: 'app-id', key: 'app-key', secret: 'app-secret' };
let redis: RedisHandle;
const started: NodeHandle[] = [];
const clients: { close(): unknown }[] = [];

async function node(id: string, env: Record<string, string> = {}): Promise<NodeHandle> {
  // subscription_count is part of the cluster-wide answers checked here (reported only when enabled).
  const n = await startNode({ env: { REDIS_URL: redis.url, NODE_ID: id, NODE_LEASE_MS: '2000', APP_ENABLE_SUBSCRIPTION_COUNT: '1', APP_ENABLE_CLIENT_MESSAGES: 'true', ...env } });
  started.push(n);
  return n;
}

async function raw(n: NodeHandle): Promise<RawClient> {
  const c = await RawClient.connect(n.port, app.key);
  clients.push({ close: () => c.ws.terminate() });
  return c;
}

function member(c: RawClient, channel: string, userId: string) {
  const data = JSON.stringify({ user_id: userId, user_info: { name: userId } });
  return c.subscribe(channel, presenceAuth(app.key, app.secret, c.socketId, channel, data), data);
}

async function metric(n: NodeHandle, name: string): Promise<number> {
  const text = await (await fetch(`${n.url}/metrics`)).text();
  let total = 0;
  for (const line of text.split('\n')) if (line.startsWith(name)) total += Number(line.split(' ').pop());
  return total;
}

before(async () => {
  redis = await startRedis();
});

after(async () => {
  for (const c of clients) c.close();
  await Promise.all(started.map((n) => n.kill()));
  await redis.stop();
});

test('an event triggered on one node reaches pusher-js subscribers on every node exactly once, except the excluded socket', async () => {
  const [a, b, c] = await Promise.all([node('d-a'), node('d-b'), node('d-c')]);
  const server = new PusherServer({ ...app, appId: app.id, host: '127.0.0.1', port: String(c.port), useTLS: false });
  const mk = (n: NodeHandle) => {
    const p = new Pusher(app.key, { cluster: 'mt1', wsHost: '127.0.0.1', wsPort: n.port, forceTLS: false, enabledTransports: ['ws'], disableStats: true });
    clients.push({ close: () => p.disconnect() });
    return p;
  };
  const subs = [mk(a), mk(a), mk(b)];
  const got: string[][] = subs.map(() => []);
  await Promise.all(
    subs.map(
      (p, i) =>
        new Promise<void>((resolve) => {
          const ch = p.subscribe('orders');
          ch.bind('shipped', (d: { n: number }) => got[i].push(String(d.n)));
          ch.bind('pusher:subscription_succeeded', () => resolve());
        }),
    ),
  );
  for (let i = 0; i < 20; i++) await server.trigger('orders', 'shipped', { n: i });
  await eventually(() => got.every((g) => g.length >= 20), { timeoutMs: 5000, what: 'all events delivered' });
  await sleep(300);
  for (const g of got) assert.deepEqual(g, Array.from({ length: 20 }, (_, i) => String(i)), 'each event once, in order');

  // Exclusion across nodes: the excluded socket lives on node a, the trigger goes through node c.
  const excluded = subs[0].connection.socket_id;
  await server.trigger('orders', 'shipped', { n: 99 }, { socket_id: excluded });
  await eventually(() => got[1].includes('99') && got[2].includes('99'), { timeoutMs: 3000, what: 'non-excluded sockets got the event' });
  await sleep(200);
  assert.ok(!got[0].includes('99'), 'the excluded socket did not');
});

test('client events and presence cross nodes: one member per user, member events once', async () => {
  const [a, b] = await Promise.all([node('p-a'), node('p-b')]);
  const ann1 = await raw(a);
  const ann2 = await raw(b);
  const bob = await raw(b);
  assert.equal((await member(ann1, 'presence-room', 'ann')).event, 'pusher_internal:subscription_succeeded');
  assert.equal((await member(bob, 'presence-room', 'bob')).event, 'pusher_internal:subscription_succeeded');
  const added = await ann1.nextEvent('pusher_internal:member_added', 'presence-room');
  assert.equal(JSON.parse(added.data as string).user_id, 'bob');
  // Ann's second socket, on the other node, is not a new member.
  const second = await member(ann2, 'presence-room', 'ann');
  const presence = JSON.parse(second.data as string).presence;
  assert.equal(presence.count, 2);
  assert.deepEqual([...presence.ids].sort(), ['ann', 'bob']);
  assert.ok(await bob.nothing((f) => f.event === 'pusher_internal:member_added', 400), 'no second member_added for ann');
  for (const n of [a, b]) {
    const users = await rest(n.url, app, 'GET', `/apps/${app.id}/channels/presence-room/users`);
    assert.deepEqual((users.body.users as { id: string }[]).map((u) => u.id).sort(), ['ann', 'bob']);
    const ch = await rest(n.url, app, 'GET', `/apps/${app.id}/channels/presence-room`, undefined, { info: 'user_count' });
    assert.deepEqual(ch.body, { occupied: true, user_count: 2 });
  }
  // A client event from node a reaches node b with the sender's user_id, and is not echoed.
  ann1.send({ event: 'client-typing', channel: 'presence-room', data: { on: true } });
  const typing = await bob.nextEvent('client-typing', 'presence-room');
  assert.equal(typing.user_id, 'ann');
  assert.ok(await ann1.nothing((f) => f.event === 'client-typing', 300));
  // Ann leaves on one node: nothing; on the other too: member_removed once.
  ann1.send({ event: 'pusher:unsubscribe', data: { channel: 'presence-room' } });
  assert.ok(await bob.nothing((f) => f.event === 'pusher_internal:member_removed', 400));
  ann2.send({ event: 'pusher:unsubscribe', data: { channel: 'presence-room' } });
  const removed = await bob.nextEvent('pusher_internal:member_removed', 'presence-room');
  assert.equal(JSON.parse(removed.data as string).user_id, 'ann');
});

test('two nodes with disjoint channels receive none of each other\'s traffic from Redis', async () => {
  const [a, b] = await Promise.all([node('i-a'), node('i-b')]);
  const ca = await raw(a);
  const cb = await raw(b);
  await ca.subscribe('only-on-a');
  await cb.subscribe('only-on-b');
  const before = await metric(b, 'ripple_backbone_messages_received_total');
  for (let i = 0; i < 50; i++) await rest(a.url, app, 'POST', `/apps/${app.id}/events`, { name: 'e', channel: 'only-on-a', data: String(i) });
  await eventually(() => ca.frames.filter((f) => f.event === 'e').length === 50, { timeoutMs: 3000, what: 'a got its events' });
  await sleep(200);
  assert.equal(await metric(b, 'ripple_backbone_messages_received_total'), before, 'node b received none of channel only-on-a');
  // The same trigger sent through node b still reaches node a's subscriber (b publishes, a receives).
  await rest(b.url, app, 'POST', `/apps/${app.id}/events`, { name: 'e', channel: 'only-on-a', data: 'via-b' });
  await ca.next((f) => f.event === 'e' && f.data === 'via-b');
  assert.ok((await metric(a, 'ripple_backbone_messages_received_total')) >= 1);
});

test('a SIGKILLed node leaves no ghost: its members are removed and member_removed is broadcast within the lease', async () => {
  const [a, b] = await Promise.all([node('k-a'), node('k-b')]);
  const watcher = await raw(a);
  const doomed = await raw(b);
  await member(watcher, 'presence-k', 'watcher');
  await member(doomed, 'presence-k', 'ghost');
  await doomed.subscribe('plain-k');
  await watcher.nextEvent('pusher_internal:member_added', 'presence-k');
  const killedAt = Date.now();
  await b.kill();
  const removed = await watcher.nextEvent('pusher_internal:member_removed', 'presence-k', 15_000);
  assert.equal(JSON.parse(removed.data as string).user_id, 'ghost');
  assert.ok(Date.now() - killedAt < 8000, `removed within the lease bound (took ${Date.now() - killedAt} ms)`);
  const users = await rest(a.url, app, 'GET', `/apps/${app.id}/channels/presence-k/users`);
  assert.deepEqual(users.body.users, [{ id: 'watcher' }]);
  const plain = await rest(a.url, app, 'GET', `/apps/${app.id}/channels/plain-k`, undefined, { info: 'subscription_count' });
  assert.deepEqual(plain.body, { occupied: false });
});

test('Redis restarting mid-traffic: nodes keep local delivery, answer queries with an error, then recover on their own', async () => {
  const [a, b] = await Promise.all([node('r-a'), node('r-b')]);
  const ca = await raw(a);
  const cb = await raw(b);
  await ca.subscribe('live');
  await cb.subscribe('live');
  await member(ca, 'presence-r', 'ra');
  await member(cb, 'presence-r', 'rb');
  await redis.stop();
  // Local subscribers still get events triggered on their own node.
  await rest(a.url, app, 'POST', `/apps/${app.id}/events`, { name: 'during', channel: 'live', data: 'x' });
  await ca.nextEvent('during', 'live');
  const q = await rest(a.url, app, 'GET', `/apps/${app.id}/channels`);
  assert.equal(q.status, 503);
  assert.equal(q.body.code, 503);
  const ready = await fetch(`${a.url}/ready`);
  assert.equal(ready.status, 503);
  await redis.restart();
  // Recovery with no restart of the nodes: cross-node delivery, counts and presence are back.
  await eventually(async () => (await fetch(`${a.url}/ready`)).status === 200 && (await fetch(`${b.url}/ready`)).status === 200, { timeoutMs: 10_000, intervalMs: 50, what: 'both nodes ready again' });
  await eventually(
    async () => {
      const users = await rest(a.url, app, 'GET', `/apps/${app.id}/channels/presence-r/users`);
      return users.status === 200 && (users.body.users as unknown[]).length === 2;
    },
    { timeoutMs: 10_000, intervalMs: 50, what: 'presence re-registered' },
  );
  const live = await rest(b.url, app, 'GET', `/apps/${app.id}/channels/live`, undefined, { info: 'subscription_count' });
  assert.deepEqual(live.body, { occupied: true, subscription_count: 2 });
  await rest(a.url, app, 'POST', `/apps/${app.id}/events`, { name: 'after', channel: 'live', data: 'y' });
  await ca.nextEvent('after', 'live');
  await cb.nextEvent('after', 'live');
});

test('SIGTERM drains a node: its sockets close with 4200, its members leave at once, the process exits 0', async () => {
  const [a, b] = await Promise.all([node('g-a'), node('g-b')]);
  const stay = await raw(a);
  const leaving = await raw(b);
  const pc = new PusherServer({ ...app, appId: app.id, host: '127.0.0.1', port: String(a.port), useTLS: false });
  await member(stay, 'presence-g', 'stay');
  await member(leaving, 'presence-g', 'leaving');
  await stay.nextEvent('pusher_internal:member_added', 'presence-g');
  const t0 = Date.now();
  const exit = b.stop();
  const closed = await leaving.closed;
  assert.equal(closed.code, 4200);
  const removed = await stay.nextEvent('pusher_internal:member_removed', 'presence-g', 5000);
  assert.equal(JSON.parse(removed.data as string).user_id, 'leaving');
  assert.ok(Date.now() - t0 < 1900, 'removed by the drain, not by lease expiry');
  assert.deepEqual(await exit, { code: 0, signal: null });
  const res = await pc.get({ path: '/channels/presence-g/users' });
  assert.deepEqual(await res.json(), { users: [{ id: 'stay' }] });
  void privateAuth;
});
