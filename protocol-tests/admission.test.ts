// The admission step when it has to wait (an app with a connection quota, counted in Redis): the
// socket opens at once and learns its outcome when the count answers. What the client sends
// meanwhile is read after connection_established, and a client gone meanwhile takes no place.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { Redis } from 'ioredis';
import { eventually } from '../src/testing/eventually.js';
import { startNode, startRedis, type NodeHandle, type RedisHandle } from '../src/testing/harness.js';
import { RawClient } from '../src/testing/raw-client.js';

const app = { id: 'adm-id', key: 'adm-key', secret: 'adm-secret', maxConnections: 1 };
let redis: RedisHandle;
let node: NodeHandle;

before(async () => {
  redis = await startRedis();
  node = await startNode({ config: { apps: [app] }, env: { REDIS_URL: redis.url, REDIS_PREFIX: 'adm' } });
});
after(async () => {
  await node?.kill();
  await redis?.stop();
});

/** A masked client text frame (RFC 6455 §5.2) with a zero mask, so the payload goes as is. (uWS drops
 * bytes that come in the same packet as the upgrade request, so frames go in later writes.) */
function textFrame(text: string): Buffer {
  const payload = Buffer.from(text);
  const head = payload.length < 126 ? Buffer.from([0x81, 0x80 | payload.length]) : Buffer.from([0x81, 0x80 | 126, payload.length >> 8, payload.length & 0xff]);
  return Buffer.concat([head, Buffer.alloc(4), payload]);
}

function upgradeRequest(): string {
  return (
    `GET /app/${app.key}?protocol=7 HTTP/1.1\r\nHost: 127.0.0.1:${node.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
    'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n'
  );
}

const received = new WeakMap<Socket, string>();

/** Everything a socket has received so far, once `done` says so. */
function readUntil(sock: Socket, done: (text: string) => boolean, timeoutMs = 5000): Promise<string> {
  if (!received.has(sock)) {
    received.set(sock, '');
    sock.on('data', (d) => received.set(sock, received.get(sock)! + d.toString('latin1')));
  }
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const check = () => {
      const text = received.get(sock)!;
      if (done(text)) return resolve(text);
      if (Date.now() - started > timeoutMs) return reject(new Error(`timed out; got ${JSON.stringify(text)}`));
      setTimeout(check, 5);
    };
    check();
  });
}

test('the upgrade does not wait for the quota count; frames sent meanwhile are read after connection_established', async () => {
  // Redis answers nothing for 400 ms: the census count waits, the upgrade does not.
  const rc = new Redis(redis.url);
  const sock = connect(node.port, '127.0.0.1');
  try {
    await new Promise((r) => sock.once('connect', r));
    await rc.client('PAUSE', 400, 'ALL');
    sock.write(upgradeRequest());
    const head = await readUntil(sock, (t) => t.includes('\r\n\r\n'), 300);
    assert.match(head, /^HTTP\/1\.1 101/);
    assert.doesNotMatch(head, /connection_established/, 'not admitted yet');
    sock.write(textFrame(JSON.stringify({ event: 'pusher:subscribe', data: { channel: 'early-bird' } })));
    const got = await readUntil(sock, (t) => t.includes('subscription_succeeded'));
    assert.ok(got.indexOf('pusher:connection_established') < got.indexOf('pusher_internal:subscription_succeeded'), got);
    assert.match(got, /"channel":"early-bird"/);
  } finally {
    sock.destroy();
    rc.disconnect();
  }
});

test('clients that drop the socket right after sending the upgrade take no place of the quota', async () => {
  for (let i = 0; i < 10; i++) {
    const sock = connect(node.port, '127.0.0.1');
    await new Promise((r) => sock.once('connect', r));
    sock.write(upgradeRequest());
    // Gone before the count answers (or just after): either way its place must come back.
    if (i % 2) sock.destroy();
    else setImmediate(() => sock.destroy());
  }
  // The quota is one: a client gets in once every place is back.
  await eventually(
    async () => {
      const c = await RawClient.open(node.port, app.key);
      const f = await c.next((x) => x.event === 'pusher:connection_established' || x.event === 'pusher:error');
      c.ws.terminate();
      return f.event === 'pusher:connection_established';
    },
    { timeoutMs: 5000, intervalMs: 200, what: 'the single place is free again' },
  );
});
