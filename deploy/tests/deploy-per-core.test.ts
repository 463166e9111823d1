// deploy/README.md's "one process per core": several processes started with the same PORT share it
// (in cluster mode a node listens with SO_REUSEPORT on Linux: reusePort defaults to on there) and the
// kernel spreads connections over them. protocol-tests/cli.test.ts checks that single-node servers do not.
// `ripple --workers N` starts them itself, and one scrape shows every process's figures.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { freePort, startNode, startRedis, defaultApp, type NodeHandle, type RedisHandle } from '../../src/testing/harness.js';
import { eventually, sleep, waitUntil } from '../../src/testing/eventually.js';
import { RawClient } from '../../src/testing/raw-client.js';
import { signedUrl } from '../../src/testing/sign-rest.js';

let redis: RedisHandle;
const nodes: NodeHandle[] = [];

before(async () => {
  redis = await startRedis();
});

after(async () => {
  await Promise.all(nodes.map((n) => n.stop()));
  await redis?.stop();
});

/** GET on a fresh TCP connection (no keep-alive), so each request can land on another process. */
function getFresh(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent: false, headers: { connection: 'close' } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Which process answered: its start time, as prom-client reports it (whole seconds). */
function startTime(metrics: string): string {
  return /^process_start_time_seconds (\d+)/m.exec(metrics)![1];
}

test('processes started with the same PORT and REDIS_URL share the port, and both serve', { skip: process.platform !== 'linux' && 'SO_REUSEPORT sharing is Linux behaviour' }, async () => {
  const port = await freePort();
  const env = { REDIS_URL: redis.url };
  nodes.push(await startNode({ port, env: { ...env, NODE_ID: 'core-0' } }));
  // A second apart, so the two processes report different start times.
  await sleep(1100);
  // Without port sharing this second listen fails and the process exits ("cannot listen").
  nodes.push(await startNode({ port, env: { ...env, NODE_ID: 'core-1' } }));

  // startNode returns once /health answers on the port, which the first process already does: keep
  // opening fresh connections until the second one (listening a moment later) has answered too.
  const seen = new Set<string>();
  await waitUntil(
    async () => {
      const r = await getFresh(port, '/metrics');
      assert.equal(r.status, 200);
      seen.add(startTime(r.body));
      return seen.size >= 2;
    },
    { timeoutMs: 15_000, intervalMs: 20 },
  );
  assert.equal(seen.size, 2, 'connections reached both processes');
  assert.equal(nodes[1].process.exitCode, null, 'the second process is still running');

  // One process stopping (a restart of one core's process) leaves the port served by the other.
  const { code } = await nodes[0].stop();
  assert.equal(code, 0);
  for (let i = 0; i < 10; i++) assert.equal((await getFresh(port, '/ready')).status, 200);
});

/**
 * Opens WebSockets (each a fresh TCP connection, which the kernel hands to either process) until both
 * processes hold some, as each says for itself in GET usage (asked on a fresh connection too).
 */
async function spreadConnections(port: number, clients: RawClient[]): Promise<Map<string, number>> {
  const perNode = new Map<string, number>();
  await eventually(
    async () => {
      if (clients.length < 100) clients.push(await RawClient.connect(port, defaultApp.key));
      const r = await getFresh(port, signedUrl('', defaultApp, 'GET', `/apps/${defaultApp.id}/usage`));
      const node = (JSON.parse(r.body) as { node: { id: string; connections: number } }).node;
      perNode.set(node.id, node.connections);
      return perNode.size === 2 && [...perNode.values()].every((c) => c > 0) && clients.length >= 6;
    },
    { timeoutMs: 20_000, intervalMs: 10, what: () => `connections on both processes: ${JSON.stringify([...perNode])}` },
  );
  return perNode;
}

/** `name{labels} value` lines of a Prometheus text, by series. */
function series(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*(?:\{[^}]*\})?) (\S+)$/.exec(line);
    if (m) out.set(m[1], Number(m[2]));
  }
  return out;
}

test('ripple --workers 2: two node processes share the port, and one scrape (metrics port or main port) adds up both', { skip: process.platform !== 'linux' && 'SO_REUSEPORT sharing is Linux behaviour' }, async () => {
  const port = await freePort();
  const metricsPort = await freePort();
  const n = await startNode({ port, env: { REDIS_URL: redis.url, REDIS_PREFIX: 'per-core-workers', NODE_ID: 'box', WORKERS: '2', METRICS_PORT: String(metricsPort), METRICS_HOST: '127.0.0.1', LOG_LEVEL: 'info' } });
  nodes.push(n);
  await eventually(() => n.output().includes('ripple listening on 127.0.0.1:' + port + '  workers=2'), { timeoutMs: 30_000, what: () => `both processes listen:\n${n.output()}` });

  const clients: RawClient[] = [];
  try {
    const perNode = await spreadConnections(port, clients);
    assert.deepEqual([...perNode.keys()].sort(), ['box-0', 'box-1']);

    const fromMetricsPort = series(await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text());
    assert.equal(fromMetricsPort.get(`ripple_connections{app="${defaultApp.id}"}`), clients.length, 'the metrics port counts every process\'s connections');
    assert.equal(fromMetricsPort.get(`ripple_connects_total{app="${defaultApp.id}"}`), clients.length);
    // Default process metrics under their conventional names, for both processes
    assert.ok((fromMetricsPort.get('process_cpu_seconds_total') ?? 0) > 0);
    assert.ok(fromMetricsPort.has('nodejs_eventloop_lag_seconds'));
    assert.ok(![...fromMetricsPort.keys()].some((k) => k.startsWith('ripple_process_') || k.startsWith('ripple_nodejs_')));
    // The public port serves no /metrics when a metrics port is set, whichever process answers.
    for (let i = 0; i < 4; i++) assert.equal((await getFresh(port, '/metrics')).status, 404);
  } finally {
    for (const c of clients) c.ws.terminate();
  }

  // A node process that dies is started again in its slot (same node id), and the port stays served.
  const children = readFileSync(`/proc/${n.pid}/task/${n.pid}/children`, 'utf8').trim().split(/\s+/).map(Number);
  assert.equal(children.length, 2, 'the primary runs two node processes');
  process.kill(children[0], 'SIGKILL');
  await eventually(() => n.output().includes('a node process died: starting it again'), { timeoutMs: 10_000, what: 'the primary notices' });
  const listenLines = () => n.output().split('\n').filter((l) => l.includes('"msg":"listening"')).length;
  await eventually(() => listenLines() === 3, { timeoutMs: 30_000, what: () => `the slot's new process listens:\n${n.output()}` });
  const again: RawClient[] = [];
  try {
    assert.deepEqual([...(await spreadConnections(port, again)).keys()].sort(), ['box-0', 'box-1']);
  } finally {
    for (const c of again) c.ws.terminate();
  }
  const { code } = await n.stop();
  assert.equal(code, 0, n.output());
});

test('ripple --workers 2 without a metrics port: a scrape of /metrics on the main port, whichever process takes it, adds up both', { skip: process.platform !== 'linux' && 'SO_REUSEPORT sharing is Linux behaviour' }, async () => {
  const port = await freePort();
  const n = await startNode({ port, env: { REDIS_URL: redis.url, REDIS_PREFIX: 'per-core-main', WORKERS: '2', LOG_LEVEL: 'info' } });
  nodes.push(n);
  await eventually(() => n.output().includes('  workers=2'), { timeoutMs: 30_000, what: () => `both processes listen:\n${n.output()}` });
  const clients: RawClient[] = [];
  try {
    await spreadConnections(port, clients);
    // Fresh connections, so the scrapes land on either process: each answers the sum.
    for (let i = 0; i < 8; i++) {
      const m = series((await getFresh(port, '/metrics')).body);
      assert.equal(m.get(`ripple_connections{app="${defaultApp.id}"}`), clients.length, 'every scrape counts both processes\' connections');
    }
  } finally {
    for (const c of clients) c.ws.terminate();
  }
  assert.equal((await n.stop()).code, 0);
});
