// Operating limits: slow consumers, origin allow-list, TLS, REST rate limits, secrets kept out of
// logs, and the metrics an operator scrapes.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'node:https';
import WebSocket from 'ws';
import { freePort, startNode, type NodeHandle } from '../../src/testing/harness.js';
import { sleep, waitUntil } from '../../src/testing/eventually.js';
import { RawClient, presenceAuth, privateAuth, signinAuth } from '../../src/testing/raw-client.js';
import { rest, signedUrl } from '../../src/testing/sign-rest.js';
import { WebhookReceiver } from '../../src/testing/webhook-receiver.js';

const nodes: NodeHandle[] = [];
after(async () => {
  await Promise.all(nodes.map((n) => n.kill()));
});
async function node(opts: Parameters<typeof startNode>[0]) {
  const n = await startNode(opts);
  nodes.push(n);
  return n;
}
const app = { id: 'prod', key: 'prod-key', secret: 'prod-secret-5b3e' };

async function metric(url: string, name: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  let total = 0;
  for (const line of text.split('\n')) if (line.startsWith(name)) total += Number(line.split(' ').pop());
  return total;
}

test('a client that stops reading is closed with 4100 while others keep receiving every event', async () => {
  const n = await node({ env: { MAX_BACKPRESSURE_BYTES: String(256 * 1024), APP_ID: app.id, APP_KEY: app.key, APP_SECRET: app.secret } });
  const fast = await RawClient.connect(n.port, app.key);
  const slow = await RawClient.connect(n.port, app.key);
  assert.equal((await fast.subscribe('feed')).event, 'pusher_internal:subscription_succeeded');
  assert.equal((await slow.subscribe('feed')).event, 'pusher_internal:subscription_succeeded');
  // The slow reader stops reading its socket: the server's send buffer for it grows.
  (slow.ws as unknown as { _socket: { pause(): void } })._socket.pause();
  let received = 0;
  fast.ws.on('message', (m) => {
    if (m.toString().includes('"event":"tick"')) received++;
  });
  const data = 'x'.repeat(8000);
  const batches = 300;
  for (let b = 0; b < batches; b++) {
    const batch = Array.from({ length: 10 }, (_, i) => ({ channel: 'feed', name: 'tick', data: `${b * 10 + i}:${data}` }));
    const r = await rest(n.url, app, 'POST', `/apps/${app.id}/batch_events`, { batch });
    assert.equal(r.status, 200);
  }
  // One 10 s budget for both waits.
  const deadline = Date.now() + 10_000;
  await waitUntil(() => received >= batches * 10, { timeoutMs: 10_000, intervalMs: 50 });
  assert.equal(received, batches * 10, 'the fast client received every event');
  await waitUntil(async () => (await metric(n.url, 'ripple_disconnects_total{app="prod",code="4100"}')) >= 1, {
    timeoutMs: Math.max(0, deadline - Date.now()),
    intervalMs: 100,
  });
  assert.equal(await metric(n.url, 'ripple_disconnects_total{app="prod",code="4100"}'), 1, 'the slow client was closed with 4100');
  assert.equal(await metric(n.url, 'ripple_connections{app="prod"}'), 1);
  fast.ws.terminate();
  slow.ws.terminate();
});

test('an app with an origin allow-list refuses other origins with 4009 and admits listed ones', async () => {
  const n = await node({
    config: { apps: [{ ...app, allowedOrigins: ['https://good.example'] }] },
  });
  const open = (origin: string) =>
    new Promise<{ first: string; code?: number }>((resolve) => {
      const ws = new WebSocket(`ws://127.0.0.1:${n.port}/app/${app.key}?protocol=7`, { origin });
      let first = '';
      ws.on('message', (m) => {
        if (!first) first = m.toString();
        if (first.includes('connection_established')) {
          ws.close();
          resolve({ first });
        }
      });
      ws.on('close', (code) => resolve({ first, code }));
    });
  const bad = await open('https://evil.example');
  assert.equal(bad.code, 4009);
  assert.equal(JSON.parse(bad.first).data.code, 4009);
  const good = await open('https://good.example');
  assert.match(good.first, /pusher:connection_established/);
});

test('REST rate limits answer 429 with Retry-After once the per-second budget is spent', async () => {
  const n = await node({ config: { apps: [{ ...app, maxBackendEventsPerSecond: 3, maxReadRequestsPerSecond: 2 }] } });
  const trig = await Promise.all(
    Array.from({ length: 12 }, () => rest(n.url, app, 'POST', `/apps/${app.id}/events`, { name: 'e', channel: 'c', data: '1' })),
  );
  const ok = trig.filter((r) => r.status === 200).length;
  const limited = trig.filter((r) => r.status === 429);
  assert.ok(ok >= 3 && ok <= 6, `between 3 and 6 accepted (a second boundary may fall inside), got ${ok}`);
  assert.ok(limited.length >= 6);
  assert.ok(Number(limited[0].headers.get('retry-after')) >= 1);
  assert.equal(limited[0].headers.get('x-ratelimit-limit'), '3');
  assert.equal(limited[0].body.code, 429);
  const reads = await Promise.all(Array.from({ length: 8 }, () => rest(n.url, app, 'GET', `/apps/${app.id}/channels`)));
  assert.ok(reads.filter((r) => r.status === 429).length >= 4);
});

test('TLS: with a certificate and key the port serves wss:// and https://', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ripple-tls-'));
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
  const n = await node({ https: true, env: { TLS_CERT_FILE: join(dir, 'cert.pem'), TLS_KEY_FILE: join(dir, 'key.pem') } });
  const p = n.port;
  const ca = readFileSync(join(dir, 'cert.pem'));
  const body = await new Promise<string>((resolve, reject) => {
    request({ host: '127.0.0.1', port: p, path: '/health', ca, servername: '127.0.0.1' }, (res) => {
      let b = '';
      res.on('data', (d) => (b += d));
      res.on('end', () => resolve(b));
    })
      .on('error', reject)
      .end();
  });
  assert.equal(JSON.parse(body).ok, true);
  const ws = new WebSocket(`wss://127.0.0.1:${p}/app/app-key?protocol=7`, { ca });
  const first = await new Promise<string>((resolve) => ws.once('message', (m) => resolve(m.toString())));
  assert.match(first, /pusher:connection_established/);
  ws.close();
});

test('secrets, signatures, auth tokens and user data never reach the logs, even at trace level', async () => {
  const secret = 'very-secret-value-93f1';
  const hook = await WebhookReceiver.start();
  const webhooks = [{ url: `${hook.url}?token=hook-query-token-5d1`, event_types: ['channel_occupied'], headers: { authorization: 'Bearer hook-header-token-77c' } }];
  const n = await node({ env: { LOG_LEVEL: 'trace', APP_SECRET: secret, APP_WEBHOOKS: JSON.stringify(webhooks), WEBHOOK_BATCH_MS: '0' } });
  const devApp = { id: 'app-id', key: 'app-key', secret };
  const c = await RawClient.connect(n.port, 'app-key');
  const auth = privateAuth('app-key', secret, c.socketId, 'private-a');
  await c.subscribe('private-a', auth);
  await c.subscribe('private-b', 'app-key:deadbeef');
  // A presence subscription whose signature does not match: refused, and logged without its channel_data.
  const channelData = JSON.stringify({ user_id: 'u1', user_info: { note: 'channel-data-marker-4e2' } });
  await c.subscribe('presence-p', presenceAuth('app-key', 'not-the-secret', c.socketId, 'presence-p', channelData), channelData);
  const userData = JSON.stringify({ id: 'u1', user_info: { note: 'user-data-marker-a91' } });
  const signin = signinAuth('app-key', secret, c.socketId, userData);
  c.send({ event: 'pusher:signin', data: { auth: signin, user_data: userData } });
  await c.nextEvent('pusher:signin_success');
  const body = JSON.stringify({ name: 'e', channel: 'private-a', data: 'x' });
  const url = signedUrl(n.url, devApp, 'POST', '/apps/app-id/events', body);
  assert.equal((await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body })).status, 200);
  await rest(n.url, { ...devApp, secret: 'wrong' }, 'POST', '/apps/app-id/events', { name: 'e', channel: 'private-a', data: 'x' });
  await RawClient.open(n.port, 'unknown-key').then((u) => u.closed);
  await waitUntil(() => hook.received.length > 0, { timeoutMs: 5000 });
  await c.close();
  await sleep(200);
  await hook.stop();
  const out = n.output();
  // The lines that could carry them were written.
  for (const msg of ['connection opened', 'connection closed', 'connection refused', 'subscription refused', 'REST request', 'webhook attempt']) {
    assert.ok(out.includes(`"msg":"${msg}"`), `a "${msg}" line was logged`);
  }
  assert.ok(!out.includes(secret), 'the app secret is not logged');
  assert.ok(!out.includes(auth.split(':')[1]), 'a channel signature is not logged');
  assert.ok(!out.includes(signin.split(':')[1]), 'a sign-in signature is not logged');
  assert.ok(!out.includes(new URL(url).searchParams.get('auth_signature')!), 'a REST signature is not logged');
  assert.ok(!out.includes('channel-data-marker-4e2') && !out.includes('user-data-marker-a91'), 'channel_data and user_data are not logged');
  assert.ok(!out.includes('hook-query-token-5d1') && !out.includes('hook-header-token-77c'), "a webhook endpoint's query and headers are not logged");
});

test('metrics count connections, messages, REST statuses and expose event-loop lag', async () => {
  const n = await node({ env: { APP_ID: app.id, APP_KEY: app.key, APP_SECRET: app.secret } });
  const c = await RawClient.connect(n.port, app.key);
  await c.subscribe('m');
  await rest(n.url, app, 'POST', `/apps/${app.id}/events`, { name: 'e', channel: 'm', data: 'x' });
  await c.nextEvent('e', 'm');
  await rest(n.url, { ...app, secret: 'nope' }, 'GET', `/apps/${app.id}/channels`);
  assert.equal(await metric(n.url, 'ripple_connections{app="prod"}'), 1);
  assert.ok((await metric(n.url, 'ripple_messages_in_total')) >= 1);
  assert.ok((await metric(n.url, 'ripple_messages_out_total')) >= 1);
  assert.equal(await metric(n.url, 'ripple_rest_requests_total{app="prod",status="200"}'), 1);
  assert.equal(await metric(n.url, 'ripple_rest_requests_total{app="prod",status="401"}'), 1);
  const text = await (await fetch(`${n.url}/metrics`)).text();
  // prom-client's defaults under their conventional names, for stock dashboards
  assert.match(text, /^nodejs_eventloop_lag_seconds /m);
  assert.match(text, /^process_cpu_seconds_total /m);
  assert.match(text, /^process_resident_memory_bytes /m);
  assert.doesNotMatch(text, /^ripple_(process|nodejs)_/m);
  assert.match(text, /^ripple_received_bytes_total\{app="prod"\} \d+/m);
  assert.match(text, /^ripple_sent_bytes_total\{app="prod"\} \d+/m);
  assert.match(text, /ripple_webhook_queue_depth/);
  await c.close();
});

test('METRICS_PORT moves /metrics to its own port: Prometheus counters named _total there, nothing on the public port', async () => {
  const metricsPort = await freePort();
  const n = await node({ env: { APP_ID: app.id, APP_KEY: app.key, APP_SECRET: app.secret, METRICS_PORT: String(metricsPort), METRICS_HOST: '127.0.0.1' } });
  const c = await RawClient.connect(n.port, app.key);
  await c.subscribe('m');
  const scrape = `http://127.0.0.1:${metricsPort}`;
  assert.equal(await metric(scrape, 'ripple_connections{app="prod"}'), 1);
  const text = await (await fetch(`${scrape}/metrics`)).text();
  // Every counter is a Prometheus counter named _total (the webhook figures included).
  const counters = [...text.matchAll(/^# TYPE (\S+) counter$/gm)].map((m) => m[1]);
  assert.ok(counters.includes('ripple_webhook_deliveries_total') && counters.includes('ripple_webhook_failures_total'), counters.join(' '));
  for (const name of counters) assert.match(name, /_total$/, `${name} is a counter named _total`);
  assert.equal((await fetch(`${scrape}/health`)).status, 200);
  assert.equal((await fetch(`${n.url}/metrics`)).status, 404, 'the public port no longer serves the scrape');
  await c.close();
});
