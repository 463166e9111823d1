// The console's HTTP side on a real uWS port: the dead letters it lists (at most 100, URLs without
// user, password or query), and the headers every answer carries.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import type { us_listen_socket } from 'uWebSockets.js';
import type { Trigger } from '../api/trigger.js';
import { StaticAppStore } from '../apps/static-store.js';
import { AppSchema } from '../config/schema.js';
import { memoryEngine } from '../engine/memory.js';
import { uWS } from '../uws.js';
import { ConsoleRelay, MemoryRelayTransport } from './relay.js';
import { serveConsole } from './routes.js';
import { ConsoleTap } from './tap.js';

const operator = 'operator-token-0123456789';
let socket: us_listen_socket | undefined;
after(() => {
  if (socket) uWS.us_listen_socket_close(socket);
});

test('dead letters: the first 100 listed with the total, their URLs without credentials or query; security headers on every answer', async () => {
  const apps = new StaticAppStore([AppSchema.parse({ id: 'a1', key: 'k1', secret: 's1' })]);
  const tap = new ConsoleTap('n1');
  const relay = new ConsoleRelay(tap, () => {}, new MemoryRelayTransport(), pino({ level: 'silent' }));
  const letters = Array.from({ length: 150 }, (_, i) => ({ appId: 'a1', url: `https://user:pass@hooks.example/in?token=t${i}`, events: [{ name: 'channel_occupied', channel: `c${i}` }], attempts: 3, error: 'HTTP 500', firstAttemptAt: 0, failedAt: i }));
  const app = uWS.App();
  const served = serveConsole(app, {
    apps,
    relay,
    trigger: {} as Trigger,
    store: memoryEngine(60_000).store,
    deadLetters: { listDead: async () => letters, replayDead: async () => 0 },
    operatorToken: operator,
    pathPrefix: '',
    maxRequestBytes: 10_000,
    log: pino({ level: 'silent' }),
  });
  const port = await new Promise<number>((resolve, reject) =>
    app.listen('127.0.0.1', 0, (s) => {
      if (!s) return reject(new Error('listen failed'));
      socket = s;
      resolve(uWS.us_socket_local_port(s));
    }),
  );
  const res = await fetch(`http://127.0.0.1:${port}/ripple/console/api/apps/a1/dead-letters`, { headers: { authorization: `Bearer ${operator}` } });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
  assert.match(res.headers.get('content-security-policy')!, /frame-ancestors 'none'/);
  const body = (await res.json()) as { total: number; dead_letters: { url: string; events: { channel: string }[] }[] };
  assert.equal(body.total, 150);
  assert.equal(body.dead_letters.length, 100);
  assert.equal(body.dead_letters[0].url, 'https://hooks.example/in');
  assert.doesNotMatch(JSON.stringify(body), /pass|token=/);
  assert.equal((await fetch(`http://127.0.0.1:${port}/ripple/console/api/apps/a1/dead-letters`)).status, 401);
  const redirect = await fetch(`http://127.0.0.1:${port}/ripple/console`, { redirect: 'manual' });
  assert.equal(redirect.status, 301);
  assert.equal(redirect.headers.get('location'), '/ripple/console/');
  served.close();
  await relay.close();
});
