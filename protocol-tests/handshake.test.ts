// Connection handshake, liveness and the close codes of spec §1-§2, over raw frames.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { startNode, freePort, repoRoot, type NodeHandle } from '../src/testing/harness.js';
import { sleep, waitUntil } from '../src/testing/eventually.js';
import { RawClient } from '../src/testing/raw-client.js';

const nodes: NodeHandle[] = [];
after(async () => {
  await Promise.all(nodes.map((n) => n.kill()));
});
async function node(opts: Parameters<typeof startNode>[0] = {}) {
  const n = await startNode(opts);
  nodes.push(n);
  return n;
}

/** Opens a socket and returns its first frame and close code (the socket is expected to be closed by the server). */
async function refused(port: number, path: string) {
  const ws = new WebSocket(`ws://127.0.0.1:${port}${path}`);
  const first = await new Promise<string>((resolve) => ws.once('message', (m) => resolve(m.toString())));
  const closed = await new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
  return { first: JSON.parse(first), code: closed };
}

test('connection_established carries a JSON-string data with a socket_id and a positive activity_timeout', async () => {
  const n = await node();
  const c = await RawClient.open(n.port, 'app-key');
  const f = await c.next();
  assert.equal(f.event, 'pusher:connection_established');
  assert.equal(typeof f.data, 'string');
  const data = JSON.parse(f.data as string);
  assert.match(data.socket_id, /^\d+\.\d+$/);
  assert.equal(data.activity_timeout, 120);
  await c.close();
});

test('socket ids are unique across connections', async () => {
  const n = await node();
  const cs = await Promise.all(Array.from({ length: 20 }, () => RawClient.connect(n.port, 'app-key')));
  assert.equal(new Set(cs.map((c) => c.socketId)).size, 20);
  await Promise.all(cs.map((c) => c.close()));
});

test('an unknown app key gets pusher:error 4001 and close 4001', async () => {
  const n = await node();
  const r = await refused(n.port, '/app/nope?protocol=7');
  assert.equal(r.first.event, 'pusher:error');
  assert.equal(r.first.data.code, 4001);
  assert.equal(r.code, 4001);
});

test('a disabled app gets 4003', async () => {
  const n = await node({ config: { apps: [{ id: '1', key: 'off', secret: 's', enabled: false }] } });
  const r = await refused(n.port, '/app/off?protocol=7');
  assert.equal(r.first.data.code, 4003);
  assert.equal(r.code, 4003);
});

test('an app over its connection quota gets 4004; a slot freed is usable again', async () => {
  const n = await node({ env: { APP_MAX_CONNECTIONS: '1' } });
  const first = await RawClient.connect(n.port, 'app-key');
  const r = await refused(n.port, '/app/app-key?protocol=7');
  assert.equal(r.first.data.code, 4004);
  assert.equal(r.code, 4004);
  await first.close();
  await sleep(100);
  const again = await RawClient.connect(n.port, 'app-key');
  await again.close();
});

test('unsupported protocol versions get 4007; a missing protocol and unknown parameters are accepted', async () => {
  const n = await node();
  for (const p of ['99', '3', 'x']) {
    const r = await refused(n.port, `/app/app-key?protocol=${p}`);
    assert.equal(r.first.data.code, 4007, `protocol=${p}`);
    assert.equal(r.code, 4007);
  }
  const ok = await RawClient.connect(n.port, 'app-key', 'client=js&version=8.6.0&flash=false&whatever=1');
  assert.match(ok.socketId, /^\d+\.\d+$/);
  await ok.close();
});

test('a malformed percent-escape in the app key is an unknown key (4001), and the node keeps serving', async () => {
  const n = await node();
  for (const path of ['/app/%E0%A4%A?protocol=7', '/app/%?protocol=7', '/app/%ZZ']) {
    const r = await refused(n.port, path);
    assert.equal(r.first.event, 'pusher:error');
    assert.equal(r.first.data.code, 4001);
    assert.equal(r.code, 4001);
  }
  const ok = await RawClient.connect(n.port, 'app-key');
  assert.match(ok.socketId, /^\d+\.\d+$/);
  await ok.close();
});

test('a path other than /app/<key> is refused at the upgrade', async () => {
  const n = await node();
  const status = await new Promise<number>((resolve) => {
    const ws = new WebSocket(`ws://127.0.0.1:${n.port}/nothere/app-key`);
    ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
    ws.on('error', () => {});
  });
  assert.equal(status, 404);
});

test('pusher:ping is answered with pusher:pong', async () => {
  const n = await node();
  const c = await RawClient.connect(n.port, 'app-key');
  c.send({ event: 'pusher:ping', data: {} });
  const f = await c.nextEvent('pusher:pong');
  assert.deepEqual(f.data, {});
  await c.close();
});

test('an idle client is pinged after activity_timeout; a client that answers stays, one that does not is closed 4201', async () => {
  const n = await node({ env: { ACTIVITY_TIMEOUT: '1', PONG_TIMEOUT: '1' } });
  const answering = await RawClient.connect(n.port, 'app-key');
  const silent = await RawClient.connect(n.port, 'app-key');
  assert.equal(answering.activityTimeout, 1);
  answering.ws.on('message', (m) => {
    if (m.toString().includes('pusher:ping')) answering.send({ event: 'pusher:pong', data: {} });
  });
  await silent.nextEvent('pusher:ping', undefined, 3000);
  const closed = await silent.closed;
  assert.equal(closed.code, 4201);
  await sleep(1500);
  assert.equal(answering.ws.readyState, WebSocket.OPEN);
  assert.ok(answering.frames.filter((f) => f.event === 'pusher:ping').length >= 1);
  await answering.close();
});

test('SIGTERM closes every socket with 4200 and the process exits 0', async () => {
  const n = await startNode();
  const cs = await Promise.all([RawClient.connect(n.port, 'app-key'), RawClient.connect(n.port, 'app-key')]);
  const exit = n.stop();
  for (const c of cs) assert.equal((await c.closed).code, 4200);
  assert.deepEqual(await exit, { code: 0, signal: null });
});

test('the server refuses to start on the pure-JS uWebSockets.js fallback unless allowed', async () => {
  const refusedNode = await startNode({ env: { UWS_USE_FALLBACK: '1' }, expectExit: true });
  const res = await refusedNode.exited;
  assert.equal(res.code, 1);
  assert.match(refusedNode.output(), /native binary did not load/);
  // Allowed explicitly, it starts and says loudly what it runs on. (The shim's HTTP and WebSocket
  // support is too partial to serve our routes, so this checks the start, not the service.)
  const port = await freePort();
  const child = spawn(process.execPath, ['--import', 'tsx', join(repoRoot, 'src', 'cli.ts')], {
    cwd: repoRoot,
    env: { ...process.env, PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'warn', UWS_USE_FALLBACK: '1', ALLOW_UWS_FALLBACK: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  try {
    await waitUntil(() => /listening on 127\.0\.0\.1/.test(out) || child.exitCode !== null, { timeoutMs: 20_000, intervalMs: 50 });
    assert.match(out, /pure-JS uWebSockets\.js fallback/);
    assert.match(out, /listening on 127\.0\.0\.1/);
    assert.equal(child.exitCode, null, 'still running');
  } finally {
    child.kill('SIGKILL');
    await exited;
  }
});

test('a bad configuration file stops the start with a message naming the field', async () => {
  const bad = await startNode({ config: { apps: [{ id: '1', key: 'k', secret: 's', maxConnections: 'many' }] }, expectExit: true });
  assert.equal((await bad.exited).code, 2);
  assert.match(bad.output(), /apps\.0\.maxConnections/);
});
