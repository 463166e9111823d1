// deploy/nginx/nginx.conf for real: Debian's nginx runs the committed config (only the listen port,
// the upstream addresses and the pid/log/temp paths substituted) in front of two nodes sharing a
// private Redis; pusher-js connects through it (WebSocket, and the HTTP fallback whose sessions must
// stay on one node) and the `pusher` server SDK triggers through it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import PusherServer from 'pusher';
import { Pusher, type PusherClient } from '../../src/testing/pusher-js.js';
import { freePort, startNode, startRedis, defaultApp as app, type NodeHandle, type RedisHandle } from '../../src/testing/harness.js';
import { eventually, sleep } from '../../src/testing/eventually.js';
import { rest } from '../../src/testing/sign-rest.js';
import { startNginx, type NginxHandle } from './support/deploy-nginx.js';

let redis: RedisHandle;
let nodeA: NodeHandle;
let nodeB: NodeHandle;
let nginx: NginxHandle;
const clients: PusherClient[] = [];

before(async () => {
  redis = await startRedis();
  [nodeA, nodeB] = await Promise.all([
    startNode({ env: { REDIS_URL: redis.url, NODE_ID: 'deploy-nginx-a', HTTP_SESSION_GRACE_MS: '1000' } }),
    startNode({ env: { REDIS_URL: redis.url, NODE_ID: 'deploy-nginx-b', HTTP_SESSION_GRACE_MS: '1000' } }),
  ]);
  nginx = await startNginx({ listenPort: await freePort(), upstreamPorts: [nodeA.port, nodeB.port] });
});

after(async () => {
  for (const c of clients) c.disconnect();
  await nginx?.stop();
  await Promise.all([nodeA, nodeB].map((n) => n?.stop()));
  await redis?.stop();
});

const viaNginx = () => `http://127.0.0.1:${nginx.port}`;

/** Open WebSocket connections a node reports for the app (read from the node directly, not through nginx). */
async function connections(n: NodeHandle): Promise<number> {
  const text = await (await fetch(`${n.url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`ripple_connections{app="${app.id}"}`));
  return line ? Number(line.split(' ').pop()) : 0;
}

/** A pusher-js client whose WebSocket goes through nginx; resolves once connected. */
async function connect(): Promise<PusherClient> {
  const p = new Pusher(app.key, {
    cluster: 'mt1',
    wsHost: '127.0.0.1',
    wsPort: nginx.port,
    forceTLS: false,
    enabledTransports: ['ws'],
    disableStats: true,
  });
  clients.push(p);
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`pusher-js did not connect through nginx (state ${p.connection.state})\n${nginx.output()}`)), 10_000);
    p.connection.bind('connected', () => {
      clearTimeout(t);
      resolve();
    });
  });
  return p;
}

function subscribe(p: PusherClient, channel: string, event: string, into: string[]): Promise<void> {
  return new Promise((resolve) => {
    const ch = p.subscribe(channel);
    ch.bind(event, (d: { n: string }) => into.push(d.n));
    ch.bind('pusher:subscription_succeeded', () => resolve());
  });
}

const server = () =>
  new PusherServer({ appId: app.id, key: app.key, secret: app.secret, host: '127.0.0.1', port: String(nginx.port), useTLS: false });

test('through nginx: /health and /ready answer, /metrics is not exposed, signed REST reaches both nodes', async () => {
  assert.equal((await fetch(`${viaNginx()}/health`)).status, 200);
  assert.equal((await fetch(`${viaNginx()}/ready`)).status, 200);
  assert.equal((await fetch(`${viaNginx()}/metrics`)).status, 404, 'scrapers read each node directly');
  for (let i = 0; i < 6; i++) {
    const r = await rest(viaNginx(), app, 'GET', `/apps/${app.id}/channels`);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.deepEqual(r.body, { channels: {} });
  }
  const bad = await rest(viaNginx(), { ...app, secret: 'wrong' }, 'GET', `/apps/${app.id}/channels`);
  assert.equal(bad.status, 401, 'the signature check happens behind nginx, on the original path and query');
  await sleep(100);
  const served = new Set([...nginx.accessLog().matchAll(/"GET \/apps\/[^"]*" 200 .* upstream=(\S+)/g)].map((m) => m[1]));
  assert.deepEqual([...served].sort(), [`127.0.0.1:${nodeA.port}`, `127.0.0.1:${nodeB.port}`].sort(), 'REST requests spread over both nodes');
});

/** A pusher-js client on one HTTP fallback transport through nginx; resolves once connected. */
async function connectHttp(transport: 'xhr_streaming' | 'xhr_polling'): Promise<PusherClient> {
  const p = new Pusher(app.key, {
    cluster: 'mt1',
    wsHost: '127.0.0.1',
    wsPort: nginx.port,
    httpHost: '127.0.0.1',
    httpPort: nginx.port,
    forceTLS: false,
    enabledTransports: [transport],
    disableStats: true,
  });
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`pusher-js (${transport}) did not connect through nginx (state ${p.connection.state})\n${nginx.output()}`)), 10_000);
    p.connection.bind('connected', () => {
      clearTimeout(t);
      resolve();
    });
  });
  const connection = (p.connection as unknown as { connection: { transport: { name: string } } }).connection;
  assert.equal(connection.transport.name, transport);
  return p;
}

test('pusher-js on xhr_streaming and xhr_polling through nginx: every request of a session reaches one node, and events triggered on either node arrive', async () => {
  const httpClients: PusherClient[] = [];
  try {
    for (const t of ['xhr_streaming', 'xhr_polling'] as const) for (let i = 0; i < 4; i++) httpClients.push(await connectHttp(t));
    const got: string[][] = httpClients.map(() => []);
    // A send that reaches another node than the session's is refused there (404): no subscription.
    const subscribed = Promise.all(httpClients.map((c, i) => subscribe(c, 'deploy-fallback', 'shipped', got[i])));
    await eventually(() => Promise.race([subscribed.then(() => true), sleep(100).then(() => false)]), { timeoutMs: 10_000, what: 'every HTTP client subscribed' });
    await eventually(async () => (await connections(nodeA)) + (await connections(nodeB)) === httpClients.length, {
      timeoutMs: 3000,
      what: 'one session per client, counted on the node that holds it',
    });
    // Triggered on each node directly: for every client one of them is the other node.
    for (const [n, node] of [['A', nodeA], ['B', nodeB]] as const) {
      const direct = new PusherServer({ appId: app.id, key: app.key, secret: app.secret, host: '127.0.0.1', port: String(node.port), useTLS: false });
      assert.equal((await direct.trigger('deploy-fallback', 'shipped', { n })).status, 200);
    }
    await eventually(() => got.every((g) => g.length === 2), { timeoutMs: 5000, what: () => `every client gets both events: ${JSON.stringify(got)}` });
    assert.ok(got.every((g) => [...g].sort().join() === 'A,B'), JSON.stringify(got));
  } finally {
    for (const c of httpClients) c.disconnect();
  }
  // Sessions close once their requests are gone for the grace period; nginx logs the ended streams.
  await eventually(async () => (await connections(nodeA)) + (await connections(nodeB)) === 0, { timeoutMs: 5000, what: 'the HTTP sessions closed' });
  await sleep(200);
  const upstreamsBySession = new Map<string, Set<string>>();
  for (const m of nginx.accessLog().matchAll(/"POST (\/pusher\/app\/[^/]+\/[^/]+\/[^/]+)\/(xhr_streaming|xhr|xhr_send)" \d+ .* upstream=(\S+)/g)) {
    const set = upstreamsBySession.get(m[1]) ?? new Set();
    set.add(m[3]);
    upstreamsBySession.set(m[1], set);
  }
  assert.equal(upstreamsBySession.size, httpClients.length, 'one HTTP session per client in the access log');
  for (const [session, upstreams] of upstreamsBySession) assert.equal(upstreams.size, 1, `${session} went to ${[...upstreams].join(', ')}`);
});

test('two pusher-js clients through nginx land on different nodes and both receive events triggered through nginx (cluster mode)', async () => {
  const c1 = await connect();
  // least_conn with a shared zone: the second socket goes to the node without one.
  await eventually(async () => (await connections(nodeA)) + (await connections(nodeB)) === 1, { timeoutMs: 3000, intervalMs: 50, what: 'first socket counted' });
  const c2 = await connect();
  await eventually(async () => (await connections(nodeA)) === 1 && (await connections(nodeB)) === 1, { timeoutMs: 3000, intervalMs: 50, what: 'one socket on each node' });

  const got: string[][] = [[], []];
  await Promise.all([subscribe(c1, 'deploy-orders', 'shipped', got[0]), subscribe(c2, 'deploy-orders', 'shipped', got[1])]);
  // Two triggers: nginx spreads REST requests over both nodes, so each client's node is the
  // receiving node for one event and a remote node for the other.
  const pusher = server();
  for (const n of ['1', '2']) {
    const res = await pusher.trigger('deploy-orders', 'shipped', { n });
    assert.equal(res.status, 200);
  }
  const both = () => got.every((g) => g.length >= 2);
  await eventually(both, { timeoutMs: 5000, what: 'both clients get both events' }).catch(() => {
    throw new Error(
      `events received per client: ${JSON.stringify(got)} (clients are on different nodes; an event that reached only ` +
        `the client on the node that took the REST call means cross-node delivery through REDIS_URL is not working)`,
    );
  });
  await sleep(200);
  assert.deepEqual(got, [['1', '2'], ['1', '2']], 'each event once, in order');
  const channels = await pusher.get({ path: '/channels', params: { filter_by_prefix: 'deploy-' } });
  assert.equal(channels.status, 200);
  assert.ok('deploy-orders' in ((await channels.json()) as { channels: Record<string, unknown> }).channels);
});

test('a node draining behind nginx: its clients reconnect through nginx to the other node and keep receiving', async () => {
  assert.equal(clients.length, 2, 'runs after the two-client test');
  assert.equal(await connections(nodeA), 1);
  const before = clients.map((c) => c.connection.socket_id);
  const got: string[][] = [[], []];
  const resubscribed = [0, 0];
  clients.forEach((c, i) => {
    const ch = c.channel('deploy-orders');
    ch.bind('shipped', (d: { n: string }) => got[i].push(d.n));
    ch.bind('pusher:subscription_succeeded', () => resubscribed[i]++);
  });

  const { code } = await nodeA.stop();
  assert.equal(code, 0, 'SIGTERM drains and exits 0');
  // pusher-js reconnects on close 4200; nginx sends the new handshake to the node still up.
  const moved = () => clients.findIndex((c, i) => c.connection.socket_id !== before[i]);
  await eventually(() => moved() >= 0 && clients[moved()].connection.state === 'connected', { timeoutMs: 10_000, what: "the drained node's client reconnected" });
  await eventually(() => resubscribed[moved()] > 0, { timeoutMs: 5000, what: 'pusher-js resubscribed after reconnecting' });
  assert.equal(clients.filter((c, i) => c.connection.socket_id !== before[i]).length, 1, 'only the drained node\'s client moved');
  assert.equal(await connections(nodeB), 2, 'both sockets on the remaining node');
  const res = await server().trigger('deploy-orders', 'shipped', { n: 'after-drain' });
  assert.equal(res.status, 200, 'REST through nginx skips the stopped node');
  await eventually(() => got.every((g) => g.includes('after-drain')), { timeoutMs: 5000, what: 'both clients got the event after the drain' });
});
