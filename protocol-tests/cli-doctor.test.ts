// `ripple doctor <url>` as a process against running nodes: a healthy deployment passes every check;
// a wrong key, a refused origin, a wrong path prefix, a wrong secret and nothing listening each fail
// with the fix; usage errors exit 2. --webhooks: the round trip through the node's debug console to a
// receiver that answers 200 (shown with its status), one that answers 500 (dead-lettered, exit 1), an
// app with no webhook, and a node whose console is off.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnCli } from '../src/testing/cli-process.js';
import { freePort, startNode, type NodeHandle } from '../src/testing/harness.js';
import { WebhookReceiver } from '../src/testing/webhook-receiver.js';

const a1 = { id: 'a1', key: 'k1', secret: 's1' };
const a2 = { id: 'a2', key: 'k2', secret: 's2', allowedOrigins: ['https://good.example'] };
let plain: NodeHandle;
let prefixed: NodeHandle;
/** a node with the console on: a3's webhook answers 200, a4's 500, a1 has none */
let hooked: NodeHandle;
let good: WebhookReceiver;
let failing: WebhookReceiver;
const a3 = { id: 'a3', key: 'k3', secret: 's3' };
const a4 = { id: 'a4', key: 'k4', secret: 's4' };
const roundTripEvents = ['channel_occupied', 'channel_vacated'];

before(async () => {
  good = await WebhookReceiver.start();
  failing = await WebhookReceiver.start();
  failing.status = 500;
  plain = await startNode({ config: { apps: [a1, a2] } });
  prefixed = await startNode({ config: { apps: [a1] }, env: { PATH_PREFIX: '/ws' }, healthPath: '/ws/health' });
  hooked = await startNode({
    config: { apps: [a1, { ...a3, webhooks: [{ url: good.url, event_types: roundTripEvents }] }, { ...a4, webhooks: [{ url: failing.url, event_types: roundTripEvents }] }] },
    // A short retry window, so the failing receiver's events are dead-lettered within the doctor's wait.
    env: { OPERATOR_TOKEN: 'doctor-test-operator', WEBHOOK_MAX_RETRY_MS: '1500' },
  });
});
after(async () => {
  await Promise.all([plain?.stop(), prefixed?.stop(), hooked?.stop(), good?.stop(), failing?.stop()]);
});

async function doctor(args: string[], env: Record<string, string> = {}) {
  const p = spawnCli(['doctor', ...args], env);
  const { code } = await p.exited;
  return { code, out: p.stdout(), err: p.stderr() };
}

test('a healthy deployment passes every check', async () => {
  const r = await doctor([plain.url, '--key', a1.key, '--app-id', a1.id, '--secret', a1.secret]);
  assert.equal(r.code, 0, r.out + r.err);
  assert.match(r.out, /ok {4}WebSocket ws:\/\/127\.0\.0\.1:\d+\/app\/k1: connected/);
  assert.match(r.out, /ok {4}HTTP fallback .*: a session opens/);
  assert.match(r.out, /ok {4}REST GET .*\/apps\/a1\/channels: signed call accepted/);
  const withPrefix = await doctor([`${prefixed.url}/ws`, '--key', a1.key, '--app-id', a1.id, '--secret', a1.secret]);
  assert.equal(withPrefix.code, 0, withPrefix.out);
});

test('each usual mistake fails with its fix', async () => {
  const wrongKey = await doctor([plain.url, '--key', 'nope']);
  assert.equal(wrongKey.code, 1);
  assert.match(wrongKey.out, /FAIL {2}WebSocket[^\n]*\n {6}fix: the key "nope" is unknown/);
  const origin = await doctor([plain.url, '--key', a2.key, '--origin', 'https://evil.example']);
  assert.match(origin.out, /the origin https:\/\/evil\.example is not allowed/);
  const noPrefix = await doctor([prefixed.url, '--key', a1.key, '--app-id', a1.id, '--secret', a1.secret]);
  assert.equal(noPrefix.code, 1);
  assert.match(noPrefix.out, /check the path prefix/);
  const wrongSecret = await doctor([plain.url, '--key', a1.key, '--app-id', a1.id, '--secret', a2.secret]);
  assert.match(wrongSecret.out, /FAIL {2}REST[^\n]*\n {6}fix: the secret is not app a1's/);
  const nobody = await doctor([`http://127.0.0.1:${await freePort()}`, '--key', a1.key]);
  assert.equal(nobody.code, 1);
  assert.match(nobody.out, /nothing listens on 127\.0\.0\.1:\d+/);
});

test('usage errors exit 2', async () => {
  assert.equal((await doctor([])).code, 2);
  assert.equal((await doctor([plain.url])).code, 2);
  assert.equal((await doctor(['not a url', '--key', 'k'])).code, 2);
});

test('TLS: an untrusted certificate fails with its fix; trusted, wss:// and https:// pass', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ripple-doctor-tls-'));
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
  const tls = await startNode({ https: true, config: { apps: [a1] }, env: { TLS_CERT_FILE: join(dir, 'cert.pem'), TLS_KEY_FILE: join(dir, 'key.pem') } });
  try {
    const url = `https://127.0.0.1:${tls.port}`;
    const untrusted = await doctor([url, '--key', a1.key, '--app-id', a1.id, '--secret', a1.secret]);
    assert.equal(untrusted.code, 1);
    assert.match(untrusted.out, /FAIL {2}WebSocket wss:[^\n]*\n {6}fix: the TLS certificate is not trusted/);
    const trusted = await doctor([url, '--key', a1.key, '--app-id', a1.id, '--secret', a1.secret], { NODE_EXTRA_CA_CERTS: join(dir, 'cert.pem') });
    assert.equal(trusted.code, 0, trusted.out);
    assert.match(trusted.out, /ok {4}WebSocket wss:\/\/127\.0\.0\.1:\d+\/app\/k1: connected/);
  } finally {
    await tls.stop();
  }
});

test('--webhooks: a webhook answering 200 shows its status, attempt and time', async () => {
  const r = await doctor([hooked.url, '--key', a3.key, '--app-id', a3.id, '--secret', a3.secret, '--webhooks']);
  assert.equal(r.code, 0, r.out + r.err);
  assert.match(r.out, /ok {4}webhook http:\/\/127\.0\.0\.1:\d+\/hook: status 200, attempt 1, \d+ ms \(channel_occupied, channel_vacated delivered\)/);
  const names = good.events().map((e) => e.name);
  assert.ok(names.includes('channel_occupied') && names.includes('channel_vacated'), JSON.stringify(names));
  assert.match(String(good.named('channel_occupied')[0].channel), /^doctor-[0-9a-f]{12}$/);
});

test('--webhooks: a failing webhook is shown with its status and fix, and exits 1', async () => {
  const r = await doctor([hooked.url, '--key', a4.key, '--app-id', a4.id, '--secret', a4.secret, '--webhooks']);
  assert.equal(r.code, 1, r.out + r.err);
  assert.match(r.out, /FAIL {2}webhook http:\/\/127\.0\.0\.1:\d+\/hook: HTTP 500, attempt \d+, \d+ ms\n {6}fix: the endpoint failed \(HTTP 500\)[^\n]*dead-lettered after \d+ attempts/);
  assert.ok(failing.attempts.length >= 1);
});

test('--webhooks: no webhook for the events, or the console off, each say so and exit 1', async () => {
  const none = await doctor([hooked.url, '--key', a1.key, '--app-id', a1.id, '--secret', a1.secret, '--webhooks']);
  assert.equal(none.code, 1, none.out + none.err);
  assert.match(none.out, /ok {4}REST GET/);
  assert.match(none.out, /FAIL {2}webhook round trip \(channel_occupied, channel_vacated\)\n {6}fix: no webhook attempt for channel_occupied or channel_vacated within 10 s: app a1 has no webhook for these events/);
  const off = await doctor([plain.url, '--key', a1.key, '--app-id', a1.id, '--secret', a1.secret, '--webhooks']);
  assert.equal(off.code, 1, off.out + off.err);
  assert.match(off.out, /fix: the debug console is off on this node[^\n]*set OPERATOR_TOKEN on the server/);
  const usage = await doctor([plain.url, '--key', a1.key, '--webhooks']);
  assert.equal(usage.code, 2);
  assert.match(usage.err, /--webhooks needs --app-id and --secret/);
});
