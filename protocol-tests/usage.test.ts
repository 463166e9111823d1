// What an app uses, as an operator reads it: per-app traffic counters in /metrics, and the signed
// GET /apps/<id>/usage on one node and across two nodes sharing Redis.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import PusherServer from 'pusher';
import { startNode, startRedis, type NodeHandle, type RedisHandle } from '../src/testing/harness.js';
import { eventually } from '../src/testing/eventually.js';
import { RawClient } from '../src/testing/raw-client.js';
import { rest } from '../src/testing/sign-rest.js';

const p1 = { id: 'p1', key: 'p1-key', secret: 'p1-secret-2d4f' };
const p2 = { id: 'p2', key: 'p2-key', secret: 'p2-secret-8a1c' };
let redis: RedisHandle | undefined;
const nodes: NodeHandle[] = [];
const clients: RawClient[] = [];
before(async () => {
  redis = await startRedis();
});
after(async () => {
  for (const c of clients) c.ws.terminate();
  await Promise.all(nodes.map((n) => n.kill()));
  await redis?.stop();
});

async function node(opts: Parameters<typeof startNode>[0]): Promise<NodeHandle> {
  const n = await startNode(opts);
  nodes.push(n);
  return n;
}

async function connect(n: NodeHandle, key: string): Promise<RawClient> {
  const c = await RawClient.connect(n.port, key);
  clients.push(c);
  return c;
}

/** Every series of the scrape: `name{labels}` → value. */
async function scrape(n: NodeHandle): Promise<Map<string, number>> {
  const text = await (await fetch(`${n.url}/metrics`)).text();
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    out.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return out;
}

/** Sends a frame and returns the bytes it took on the wire (the server counts UTF-8 bytes). */
function sent(c: RawClient, frame: object): number {
  const text = JSON.stringify(frame);
  c.send(text);
  return Buffer.byteLength(text);
}

/** UTF-8 bytes of the channel events of this name a client received. */
function bytesOf(c: RawClient, event: string): number {
  return c.raw.filter((r) => JSON.parse(r).event === event).reduce((n, r) => n + Buffer.byteLength(r), 0);
}

test('messages and bytes in and out are counted per app: two apps on one node, each with its own figures', async () => {
  const n = await node({ config: { apps: [p1, p2] } });
  const a = await connect(n, p1.key);
  const b = await connect(n, p2.key);
  const c = await connect(n, p2.key);
  let in1 = sent(a, { event: 'pusher:subscribe', data: { channel: 'news' } });
  await a.nextEvent('pusher_internal:subscription_succeeded');
  in1 += sent(a, { event: 'pusher:ping', data: {} });
  await a.nextEvent('pusher:pong');
  let in2 = 0;
  for (const cl of [b, c]) {
    in2 += sent(cl, { event: 'pusher:subscribe', data: { channel: 'news' } });
    await cl.nextEvent('pusher_internal:subscription_succeeded');
  }
  assert.equal((await rest(n.url, p1, 'POST', '/apps/p1/events', { name: 'one', channel: 'news', data: 'é'.repeat(10) })).status, 200);
  assert.equal((await rest(n.url, p2, 'POST', '/apps/p2/events', { name: 'two', channel: 'news', data: 'x' })).status, 200);
  assert.equal((await rest(n.url, p2, 'POST', '/apps/p2/events', { name: 'two', channel: 'news', data: 'yy' })).status, 200);
  await a.nextEvent('one');
  for (const cl of [b, c]) {
    await cl.nextEvent('two');
    await cl.nextEvent('two');
  }

  const m = await scrape(n);
  assert.deepEqual(
    ['p1', 'p2'].map((app) => ['messages_in', 'received_bytes', 'messages_out', 'sent_bytes'].map((k) => m.get(`ripple_${k}_total{app="${app}"}`))),
    [
      [2, in1, 1, bytesOf(a, 'one')],
      [2, in2, 4, bytesOf(b, 'two') + bytesOf(c, 'two')],
    ],
  );
  assert.equal(m.get('ripple_rest_requests_total{app="p2",status="200"}'), 2);
});

test('GET /apps/<id>/usage: signed (401 without), a read for the rate limit, this node\'s figures since start', async () => {
  const n = await node({ config: { apps: [{ ...p1, maxReadRequestsPerSecond: 2 }, p2] } });
  const t0 = Date.now();
  const a = await connect(n, p1.key);
  await a.subscribe('room');
  await a.subscribe('private-x', 'p1-key:0000'); // refused: not an occupied channel
  await connect(n, p1.key);
  await connect(n, p2.key);
  await rest(n.url, p1, 'POST', '/apps/p1/events', { name: 'e', channel: 'room', data: 'hello' });
  await a.nextEvent('e');

  const unsigned = await fetch(`${n.url}/apps/p1/usage`);
  assert.equal(unsigned.status, 401);
  assert.equal((await rest(n.url, { ...p1, secret: 'wrong' }, 'GET', '/apps/p1/usage')).status, 401);
  const r = await rest(n.url, p1, 'GET', '/apps/p1/usage');
  assert.equal(r.status, 200, JSON.stringify(r.body));
  const m = await scrape(n);
  const usage = r.body as { node: Record<string, unknown>; cluster: Record<string, unknown> };
  assert.equal(typeof usage.node.id, 'string');
  assert.ok((usage.node.started_at as number) <= t0 && (usage.node.started_at as number) > t0 - 60_000, 'started_at is the node start');
  assert.deepEqual(
    { ...usage.node, id: undefined, started_at: undefined },
    {
      id: undefined,
      started_at: undefined,
      connections: 2,
      messages_in: m.get('ripple_messages_in_total{app="p1"}'),
      bytes_in: m.get('ripple_received_bytes_total{app="p1"}'),
      messages_out: 1,
      bytes_out: bytesOf(a, 'e'),
    },
  );
  assert.equal(usage.node.messages_in, 2);
  // One node: the node is the cluster.
  assert.deepEqual(usage.cluster, { connections: 2, occupied_channels: 1 });
  // The pusher SDK reads it as it reads any other path of the app.
  const sdk = new PusherServer({ appId: p1.id, key: p1.key, secret: p1.secret, host: '127.0.0.1', port: String(n.port), useTLS: false });
  const viaSdk = (await (await sdk.get({ path: '/usage' })).json()) as typeof usage;
  assert.deepEqual(viaSdk.cluster, usage.cluster);

  // The app's read budget (2 a second) covers usage reads too.
  const burst = await Promise.all(Array.from({ length: 6 }, () => rest(n.url, p1, 'GET', '/apps/p1/usage')));
  assert.ok(burst.some((b) => b.status === 429), burst.map((b) => b.status).join(','));
});

test('GET /apps/<id>/usage across two nodes on one Redis: connections of a quota app and occupied channels cluster-wide, traffic per node', async () => {
  const quota = { ...p1, maxConnections: 10 };
  const cfg = { apps: [quota, p2] };
  const env = (id: string) => ({ REDIS_URL: redis!.url, NODE_ID: id, REDIS_PREFIX: 'usage-test' });
  const [a, b] = await Promise.all([node({ config: cfg, env: env('usage-a') }), node({ config: cfg, env: env('usage-b') })]);
  const onA = [await connect(a, p1.key), await connect(a, p1.key)];
  const onB = [await connect(b, p1.key)];
  await connect(a, p2.key);
  await connect(b, p2.key);
  await connect(b, p2.key);
  await onA[0].subscribe('only-a');
  await onA[1].subscribe('both');
  await onB[0].subscribe('both');
  await onB[0].subscribe('only-b');
  await onB[0].subscribe('presence-nope', 'p1-key:0000'); // refused: not occupied

  const usage = async (n: NodeHandle, app: typeof p1) => {
    const r = await rest(n.url, app, 'GET', `/apps/${app.id}/usage`);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    return r.body as { node: Record<string, number | string>; cluster: Record<string, number | null> };
  };
  await eventually(async () => (await usage(a, p1)).cluster.occupied_channels === 3, { timeoutMs: 5000, what: 'three channels occupied across the cluster' });
  const [ua, ub] = [await usage(a, p1), await usage(b, p1)];
  assert.deepEqual([ua.node.id, ub.node.id], ['usage-a', 'usage-b']);
  assert.deepEqual([ua.node.connections, ub.node.connections], [2, 1]);
  assert.deepEqual([ua.node.messages_in, ub.node.messages_in], [2, 3], 'each node counts the frames its clients sent');
  assert.deepEqual(ua.cluster, { connections: 3, occupied_channels: 3 });
  assert.deepEqual(ub.cluster, { connections: 3, occupied_channels: 3 });

  // An app without a quota is not counted cluster-wide: its cluster figure is null, its node figures are there.
  const [fa, fb] = [await usage(a, p2), await usage(b, p2)];
  assert.deepEqual([fa.node.connections, fb.node.connections], [1, 2]);
  assert.deepEqual(fa.cluster, { connections: null, occupied_channels: 0 });

  // Published on b, delivered on both: each node counts its own deliveries.
  await rest(b.url, p1, 'POST', '/apps/p1/events', { name: 'e', channel: 'both', data: 'x' });
  await onA[1].nextEvent('e');
  await onB[0].nextEvent('e');
  const [ua2, ub2] = [await usage(a, p1), await usage(b, p1)];
  assert.deepEqual([ua2.node.messages_out, ub2.node.messages_out], [1, 1]);
  onB[0].ws.close();
  await eventually(async () => (await usage(a, p1)).cluster.connections === 2, { timeoutMs: 5000, what: 'a closed connection leaves the cluster count' });
});
