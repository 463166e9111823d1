// Two nodes on one private Redis under faults: the cluster-wide connection quota never refuses a
// connection within it nor admits one over it while clients move between nodes, and frees a
// SIGKILLed node's places within the node lease; a SIGKILLed webhook deliverer never stalls its
// endpoint beyond the lease.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { startNode, startRedis, type NodeHandle, type RedisHandle } from '../src/testing/harness.js';
import { eventually, sleep } from '../src/testing/eventually.js';
import { RawClient, presenceAuth } from '../src/testing/raw-client.js';
import { WebhookReceiver } from '../src/testing/webhook-receiver.js';
import { queueName } from '../src/webhooks/queue.js';

const LEASE_MS = 2000;
const app = { id: 'cf-id', key: 'cf-key', secret: 'cf-secret' };
let redis: RedisHandle;
let rc: Redis;
const nodes: NodeHandle[] = [];
const clients: RawClient[] = [];
const receivers: WebhookReceiver[] = [];

before(async () => {
  redis = await startRedis();
  rc = new Redis(redis.url);
});
after(async () => {
  for (const c of clients) c.ws.terminate();
  await Promise.all(nodes.map((n) => n.kill()));
  await Promise.all(receivers.map((r) => r.stop()));
  rc.disconnect();
  await redis.stop();
});

/** Opens a connection: established, or refused with the code of its pusher:error and close. */
async function open(n: NodeHandle): Promise<{ ok: true; c: RawClient } | { ok: false; code: number }> {
  const c = await RawClient.open(n.port, app.key);
  clients.push(c);
  const f = await c.next((x) => x.event === 'pusher:connection_established' || x.event === 'pusher:error');
  if (f.event === 'pusher:connection_established') {
    c.socketId = JSON.parse(f.data as string).socket_id;
    return { ok: true, c };
  }
  return { ok: false, code: (await c.closed).code };
}

async function connections(n: NodeHandle): Promise<number> {
  const text = await (await fetch(`${n.url}/metrics`)).text();
  const m = new RegExp(`^ripple_connections\\{app="${app.id}"\\} (\\d+)`, 'm').exec(text);
  return m ? Number(m[1]) : 0;
}

test('maxConnections 3 across two nodes: clients moving between nodes are never refused within the quota, a fourth never gets in, a SIGKILLed node frees its places within the lease', async () => {
  const cfg = { apps: [{ ...app, maxConnections: 3 }] };
  // One prefix for both: the census is shared through it.
  const env = (id: string) => ({ REDIS_URL: redis.url, NODE_ID: id, NODE_LEASE_MS: String(LEASE_MS), REDIS_PREFIX: 'cf-quota' });
  const [a, b] = await Promise.all([startNode({ config: cfg, env: env('q-a') }), startNode({ config: cfg, env: env('q-b') })]);
  nodes.push(a, b);
  const other = (n: NodeHandle) => (n === a ? b : a);
  const held: { c: RawClient; on: NodeHandle }[] = [];
  for (const on of [a, b, a]) {
    const r = await open(on);
    assert.ok(r.ok, 'the first three connections get in');
    held.push({ c: r.c, on });
  }
  for (let round = 0; round < 40; round++) {
    // A client leaves one node (a close handshake, or dropping its TCP connection) and comes back at
    // once on the other.
    const leaving = held.shift()!;
    if (round % 2) await leaving.c.close();
    else {
      leaving.c.ws.terminate();
      await leaving.c.closed;
    }
    const moved = await open(other(leaving.on));
    assert.ok(moved.ok, `round ${round}: refused ${!moved.ok && moved.code} within the quota`);
    held.push({ c: moved.c, on: other(leaving.on) });
    // The quota is full again: one more on each node at once, both refused with 4004.
    const extra = await Promise.all([open(a), open(b)]);
    assert.deepEqual(extra.map((e) => (e.ok ? 'admitted' : e.code)), [4004, 4004], `round ${round}: a fourth connection`);
    assert.equal((await connections(a)) + (await connections(b)), 3, `round ${round}: three open across the cluster`);
  }

  // Two of the three places on one node; that node is SIGKILLed.
  while (held.filter((h) => h.on === b).length < 2) {
    const leaving = held.find((h) => h.on === a)!;
    held.splice(held.indexOf(leaving), 1);
    await leaving.c.close();
    const r = await open(b);
    assert.ok(r.ok);
    held.push({ c: r.c, on: b });
  }
  const killedAt = Date.now();
  await b.kill();
  const admitted: RawClient[] = [];
  while (admitted.length < 2 && Date.now() - killedAt < LEASE_MS * 3) {
    const r = await open(a);
    if (r.ok) admitted.push(r.c);
    else assert.equal(r.code, 4004);
    if (!r.ok) await sleep(50);
  }
  const freedMs = Date.now() - killedAt;
  assert.equal(admitted.length, 2, 'the dead node\'s two places are free again');
  assert.ok(freedMs < LEASE_MS + 1500, `freed within the lease (${LEASE_MS} ms): took ${freedMs} ms`);
  const r = await open(a);
  assert.deepEqual(r.ok ? 'admitted' : r.code, 4004, 'and no more than its two');
});

test('SIGKILL of the node delivering an endpoint: the crash\'s member_removed/channel_vacated and the survivor\'s new events arrive within the lease plus a few seconds', async () => {
  const r = await WebhookReceiver.start();
  receivers.push(r);
  const cfg = { apps: [{ ...app, webhooks: [{ url: r.url, event_types: ['channel_occupied', 'channel_vacated', 'member_added', 'member_removed'] }] }] };
  const env = (id: string) => ({ REDIS_URL: redis.url, NODE_ID: id, NODE_LEASE_MS: String(LEASE_MS), WEBHOOK_BATCH_MS: '20', REDIS_PREFIX: 'cf-hooks' });
  const [a, b] = await Promise.all([startNode({ config: cfg, env: env('h-a') }), startNode({ config: cfg, env: env('h-b') })]);
  nodes.push(a, b);
  // The endpoint's deliverer is whichever node claimed its stream.
  const ownerKey = `cf-hooks:wh:owner:${queueName(app.id, r.url)}`;
  let owner = '';
  await eventually(async () => (owner = (await rc.get(ownerKey)) ?? '') !== '', { timeoutMs: 5000, what: 'a node owns the endpoint\'s queue' });
  const [doomed, healthy] = owner === 'h-a' ? [a, b] : [b, a];

  const member = async (n: NodeHandle, userId: string) => {
    const res = await open(n);
    assert.ok(res.ok);
    const cd = JSON.stringify({ user_id: userId });
    await res.c.subscribe('presence-crash', presenceAuth(app.key, app.secret, res.c.socketId, 'presence-crash', cd), cd);
    return res.c;
  };
  const d = await member(doomed, 'doomed');
  await d.subscribe('crash-only');
  const h = await member(healthy, 'healthy');
  await eventually(() => r.named('member_added').length === 2 && r.named('channel_occupied', 'crash-only').length === 1, { timeoutMs: 5000, what: 'webhooks before the crash' });

  const killedAt = Date.now();
  await doomed.kill();
  // New events on the healthy node while the endpoint has no deliverer.
  await h.subscribe('after-crash');
  const due = () =>
    r.named('member_removed', 'presence-crash').length === 1 && r.named('channel_vacated', 'crash-only').length === 1 && r.named('channel_occupied', 'after-crash').length === 1;
  await eventually(due, { timeoutMs: LEASE_MS + 8000, what: () => `everything after the crash; got ${JSON.stringify(r.events())}` });
  const tookMs = Math.max(...r.received.filter((x) => x.at >= killedAt).map((x) => x.at)) - killedAt;
  assert.ok(tookMs < LEASE_MS + 3000, `delivered within the lease (${LEASE_MS} ms) plus 3 s: took ${tookMs} ms`);
  assert.deepEqual(r.named('member_removed', 'presence-crash'), [{ name: 'member_removed', channel: 'presence-crash', user_id: 'doomed' }]);
});
