// deploy/README.md's "one process per core": several processes started with the same PORT share it
// (in cluster mode a node listens with SO_REUSEPORT on Linux: reusePort defaults to on there) and the
// kernel spreads connections over them. protocol-tests/cli.test.ts checks that single-node servers do not.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { freePort, startNode, startRedis, type NodeHandle, type RedisHandle } from '../../src/testing/harness.js';
import { sleep, waitUntil } from '../../src/testing/eventually.js';

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
  return /^ripple_process_start_time_seconds (\d+)/m.exec(metrics)![1];
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
