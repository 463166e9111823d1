// What an operator sees with --debug (or LOG_LEVEL=debug): each connection's open and close, every
// refused handshake and subscription with its reason, every REST request with its status, every
// webhook attempt; human-readable lines on a terminal, JSON lines otherwise. Nodes are started
// through the CLI as a user starts them.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { cleanEnv, startCli, type CliProcess } from '../src/testing/cli-process.js';
import { eventually } from '../src/testing/eventually.js';
import { freePort, repoRoot } from '../src/testing/harness.js';
import { RawClient, presenceAuth, type CloseInfo, type Frame } from '../src/testing/raw-client.js';
import { rest } from '../src/testing/sign-rest.js';
import { WebhookReceiver } from '../src/testing/webhook-receiver.js';

const processes: CliProcess[] = [];
const sockets: { ws: WebSocket }[] = [];
const receivers: WebhookReceiver[] = [];
let limited: ChildProcess | undefined;
after(async () => {
  for (const c of sockets) c.ws.terminate();
  limited?.kill('SIGKILL');
  await Promise.all([...processes.map((p) => p.stop(2000)), ...receivers.map((r) => r.stop())]);
});

/** A node started as `ripple --config <file> <args>` (default --debug), with `env` besides PORT and HOST. */
async function debugNode(config: object, args = ['--debug'], env: Record<string, string> = {}): Promise<{ port: number; url: string; p: CliProcess }> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'ripple-debug-'));
  const file = join(dir, 'config.json');
  writeFileSync(file, JSON.stringify(config));
  const p = await startCli(['--config', file, ...args], { PORT: String(port), HOST: '127.0.0.1', ...env }, port);
  processes.push(p);
  return { port, url: `http://127.0.0.1:${port}`, p };
}

type LogLine = Record<string, unknown> & { level: number; msg: string };
const DEBUG = 20;

function logLines(out: string): LogLine[] {
  return out
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as LogLine);
}

/** The first debug line with this message whose fields include `fields`, waiting for it. */
async function logged(p: CliProcess, msg: string, fields: Record<string, unknown>): Promise<LogLine> {
  const find = () => logLines(p.stdout()).find((l) => l.msg === msg && Object.entries(fields).every(([k, v]) => l[k] === v));
  await eventually(() => find() !== undefined, {
    timeoutMs: 5000,
    what: () => `a "${msg}" line with ${JSON.stringify(fields)}; lines so far:\n${logLines(p.stdout()).filter((l) => l.msg === msg).map((l) => JSON.stringify(l)).join('\n')}`,
  });
  const line = find()!;
  assert.equal(line.level, DEBUG, `"${msg}" is a debug line`);
  return line;
}

/** A metric's value by its exact series name (`name{labels}`), 0 when absent. */
async function metric(url: string, series: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line ? Number(line.split(' ').pop()) : 0;
}

/** Opens /app/<key> and waits for the server to close it; the first frame and the close. */
async function refusedWith(port: number, key: string, query = 'protocol=7', origin?: string): Promise<{ first: Frame; close: CloseInfo }> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/app/${key}?${query}`, origin ? { origin } : {});
  sockets.push({ ws });
  ws.on('error', () => {});
  const first = new Promise<Frame>((resolve) => ws.once('message', (m) => resolve(JSON.parse(m.toString()))));
  const close = await new Promise<CloseInfo>((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  return { first: await first, close };
}

async function connect(port: number, key: string): Promise<RawClient> {
  const c = await RawClient.connect(port, key);
  sockets.push(c);
  return c;
}

test('--debug logs each connection opening and closing, with its app, socket id, address, close code and who closed it', async () => {
  const n = await debugNode({ apps: [{ id: 'o1', key: 'o1-key', secret: 'o1-secret-7c1e' }, { id: 'o2', key: 'o2-key', secret: 'o2-secret-2a9b', enableUserAuthentication: true, userAuthenticationTimeout: 200 }] });
  const byClient = await connect(n.port, 'o1-key');
  const opened = await logged(n.p, 'connection opened', { app: 'o1', socketId: byClient.socketId });
  assert.equal(opened.remoteAddress, '127.0.0.1');
  byClient.ws.close(1000);
  const closed = await logged(n.p, 'connection closed', { app: 'o1', socketId: byClient.socketId });
  assert.deepEqual({ code: closed.code, closedBy: closed.closedBy, remoteAddress: closed.remoteAddress }, { code: 1000, closedBy: 'client', remoteAddress: '127.0.0.1' });

  // An app that requires sign-in: the server closes an unsigned connection with 4009.
  const byServer = await connect(n.port, 'o2-key');
  assert.equal((await byServer.closed).code, 4009);
  const timedOut = await logged(n.p, 'connection closed', { app: 'o2', socketId: byServer.socketId });
  assert.deepEqual({ code: timedOut.code, closedBy: timedOut.closedBy }, { code: 4009, closedBy: 'server' });
});

test('every refused handshake is logged with its code and reason and counted in ripple_connections_refused_total{app,reason}', async () => {
  const n = await debugNode({
    apps: [
      { id: 'h1', key: 'h1-key', secret: 'h1-secret-51aa', maxConnections: 1 },
      { id: 'h2', key: 'h2-key', secret: 'h2-secret-0b3c', enabled: false },
      { id: 'h3', key: 'h3-key', secret: 'h3-secret-9d2f', allowedOrigins: ['https://ok.example'] },
    ],
  });
  const held = await connect(n.port, 'h1-key');
  const cases = [
    { key: 'no-such-key', query: 'protocol=7', code: 4001, app: '', reason: 'unknown_app' },
    { key: 'h2-key', query: 'protocol=7', code: 4003, app: 'h2', reason: 'app_disabled' },
    { key: 'h1-key', query: 'protocol=7', code: 4004, app: 'h1', reason: 'connection_quota' },
    { key: 'h1-key', query: 'protocol=99', code: 4007, app: 'h1', reason: 'protocol' },
    { key: 'h3-key', query: 'protocol=7', origin: 'https://evil.example', code: 4009, app: 'h3', reason: 'origin' },
  ];
  for (const c of cases) {
    const { first, close } = await refusedWith(n.port, c.key, c.query, c.origin);
    assert.equal(close.code, c.code, `${c.reason}: closed with ${c.code}`);
    assert.equal((first.data as { code: number }).code, c.code, `${c.reason}: told with pusher:error ${c.code}`);
    const line = await logged(n.p, 'connection refused', { reason: c.reason });
    assert.equal(line.code, c.code);
    assert.equal(line.remoteAddress, '127.0.0.1');
    // An unknown key is named by the key (apps by their id); a key is never a metric label.
    if (c.app) assert.equal(line.app, c.app);
    else assert.equal(line.key, 'no-such-key');
    assert.equal(await metric(n.url, `ripple_connections_refused_total{app="${c.app}",reason="${c.reason}"}`), 1, `${c.reason} counted once`);
  }
  assert.equal((await logged(n.p, 'connection refused', { reason: 'origin' })).origin, 'https://evil.example');

  // Draining: the port is closed before the sockets hear 4200, so a new connection is refused by the
  // kernel and never becomes a handshake here (4200 "draining" is left for an upgrade already accepted
  // when the port closed).
  const stopped = n.p.stop();
  assert.equal((await held.closed).code, 4200);
  const late = new WebSocket(`ws://127.0.0.1:${n.port}/app/h3-key?protocol=7`, { origin: 'https://ok.example' });
  sockets.push({ ws: late });
  const err = await new Promise<NodeJS.ErrnoException>((resolve) => late.once('error', resolve));
  assert.equal(err.code, 'ECONNREFUSED');
  await stopped;
  assert.equal(logLines(n.p.stdout()).filter((l) => l.msg === 'connection refused' && l.reason === 'draining').length, 0);
});

/**
 * The open-file limit of the node in the open_files test: low, so a few hundred connections reach it, but
 * not so low that loading the modules runs out (at 64, Node's module loader opening zod's locale files at
 * once failed with EMFILE before the node listened, in fresh-clone CI runs).
 */
const FILE_LIMIT = 512;

test('a connection refused for want of file descriptors is logged and counted as open_files (4100)', { skip: process.platform !== 'linux' && 'ulimit' }, async () => {
  const port = await freePort();
  const cli = join(repoRoot, 'src', 'cli.ts');
  limited = spawn('sh', ['-c', `ulimit -n ${FILE_LIMIT}; exec "${process.execPath}" --import tsx "${cli}" --debug`], {
    cwd: repoRoot,
    env: cleanEnv({ PORT: String(port), HOST: '127.0.0.1' }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  limited.stdout!.on('data', (d) => (out += d));
  limited.stderr!.on('data', (d) => (err += d));
  const url = `http://127.0.0.1:${port}`;
  await eventually(() => fetch(`${url}/health`).then((r) => r.status === 200, () => false), {
    timeoutMs: 20_000,
    intervalMs: 100,
    what: () => `the limited node answers (exit ${limited?.exitCode}; stdout: ${out.slice(-1500)}; stderr: ${err.slice(-1500)})`,
  });
  let refusal: { code: number } | undefined;
  for (let i = 0; i < FILE_LIMIT && !refusal; i++) {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/app/app-key?protocol=7`);
    sockets.push({ ws });
    ws.on('error', () => {});
    refusal = await new Promise<{ code: number } | undefined>((resolve) => {
      ws.on('message', (m) => m.toString().includes('connection_established') && resolve(undefined));
      ws.on('close', (code) => resolve({ code }));
    });
  }
  assert.equal(refusal?.code, 4100);
  await eventually(() => logLines(out).some((l) => l.msg === 'connection refused' && l.reason === 'open_files'), { timeoutMs: 5000, what: 'the open_files refusal logged' });
  const line = logLines(out).find((l) => l.msg === 'connection refused' && l.reason === 'open_files')!;
  assert.deepEqual({ level: line.level, app: line.app, code: line.code }, { level: DEBUG, app: 'app-id', code: 4100 });
  for (const s of sockets.splice(0)) s.ws.terminate();
  await eventually(async () => (await metric(url, 'ripple_connections_refused_total{app="app-id",reason="open_files"}')) >= 1, { timeoutMs: 5000, retryThrows: true, what: 'open_files counted' });
});

test('every refused subscription is logged with its reason, never its auth or channel_data, and counted by reason', async () => {
  const app = { id: 's1', key: 's1-key', secret: 's1-secret-44de' };
  // LOG_LEVEL=debug is the same switch as --debug.
  const d = await debugNode({ apps: [{ ...app, maxChannelsPerConnection: 3, maxPresenceMembersPerChannel: 1, maxChannelNameLength: 20 }] }, [], { LOG_LEVEL: 'debug' });
  const c = await connect(d.port, app.key);
  const refusals: [string, () => Promise<Frame>][] = [
    ['auth', () => c.subscribe('private-a', `${app.key}:0000`)],
    ['invalid_name', () => c.subscribe('bad name!')],
    ['name_too_long', () => c.subscribe('x'.repeat(21))],
    ['not_signed_in', () => c.subscribe('#server-to-user-u1')],
    ['member_too_large', () => {
      const data = JSON.stringify({ user_id: 'u1', user_info: { secretish: 'member-info-marker', pad: 'y'.repeat(2000) } });
      return c.subscribe('presence-big', presenceAuth(app.key, app.secret, c.socketId, 'presence-big', data), data);
    }],
  ];
  for (const [reason, attempt] of refusals) {
    const f = await attempt();
    assert.equal(f.event, 'pusher:subscription_error', reason);
    const line = await logged(d.p, 'subscription refused', { reason });
    assert.equal(line.app, app.id);
    assert.equal(line.socketId, c.socketId);
    assert.equal(line.status, (f.data as { status: number }).status);
  }
  // The presence store's own refusal: the channel is full.
  const first = await connect(d.port, app.key);
  const tokens: string[] = [];
  const member = (cl: RawClient, user: string) => {
    const data = JSON.stringify({ user_id: user, user_info: { name: 'member-info-marker' } });
    const auth = presenceAuth(app.key, app.secret, cl.socketId, 'presence-room', data);
    tokens.push(auth.split(':')[1]);
    return cl.subscribe('presence-room', auth, data);
  };
  assert.equal((await member(first, 'u1')).event, 'pusher_internal:subscription_succeeded');
  assert.equal((await member(c, 'u2')).event, 'pusher:subscription_error');
  assert.equal((await logged(d.p, 'subscription refused', { reason: 'presence_full' })).channel, 'presence-room');
  // The channel limit: three channels held, the fourth refused.
  for (const ch of ['a', 'b', 'c']) assert.equal((await c.subscribe(ch)).event, 'pusher_internal:subscription_succeeded');
  assert.equal((await c.subscribe('d')).event, 'pusher:subscription_error');
  await logged(d.p, 'subscription refused', { reason: 'channel_limit', channel: 'd' });

  for (const reason of ['auth', 'invalid_name', 'name_too_long', 'not_signed_in', 'member_too_large', 'presence_full', 'channel_limit']) {
    assert.equal(await metric(d.url, `ripple_subscriptions_refused_total{app="s1",reason="${reason}"}`), 1, reason);
  }
  const out = d.p.stdout();
  assert.ok(!out.includes('member-info-marker'), 'channel_data contents are not logged');
  assert.ok(!out.includes(`${app.key}:0000`) && !tokens.some((t) => out.includes(t)), 'auth tokens are not logged');
});

test('every REST request is logged with its status, a refusal with its reason, never its signature; counted by app and status', async () => {
  const ok = { id: 'r1', key: 'r1-key', secret: 'r1-secret-6f0d' };
  const off = { id: 'r2', key: 'r2-key', secret: 'r2-secret-13ab' };
  const n = await debugNode({ maxRequestBytes: 16 * 1024, apps: [ok, { ...off, enabled: false }] });
  const calls: { status: number; route: string; call: () => Promise<{ status: number }> }[] = [
    { status: 200, route: 'POST /apps/r1/events', call: () => rest(n.url, ok, 'POST', '/apps/r1/events', { name: 'e', channel: 'c', data: 'x' }) },
    { status: 200, route: 'GET /apps/r1/channels', call: () => rest(n.url, ok, 'GET', '/apps/r1/channels') },
    { status: 401, route: 'POST /apps/r1/events', call: () => rest(n.url, { ...ok, secret: 'wrong' }, 'POST', '/apps/r1/events', { name: 'e', channel: 'c', data: 'x' }) },
    { status: 401, route: 'GET /apps/r1/channels', call: () => rest(n.url, { ...ok, secret: 'wrong' }, 'GET', '/apps/r1/channels') },
    { status: 403, route: 'GET /apps/r2/channels', call: () => rest(n.url, off, 'GET', '/apps/r2/channels') },
    { status: 404, route: 'GET /apps/nope/channels', call: () => rest(n.url, ok, 'GET', '/apps/nope/channels') },
    // past any name the socket API accepts: Fastify's own 400 (frameworkErrors), counted and logged as well
    { status: 400, route: `GET /apps/r1/channels/${'x'.repeat(2000)}`, call: () => rest(n.url, ok, 'GET', `/apps/r1/channels/${'x'.repeat(2000)}`) },
    { status: 413, route: 'POST /apps/r1/events', call: () => rest(n.url, ok, 'POST', '/apps/r1/events', { name: 'e', channel: 'c', data: 'x'.repeat(11 * 1024) }) },
    { status: 413, route: 'POST /apps/r1/batch_events', call: () => rest(n.url, ok, 'POST', '/apps/r1/batch_events', { batch: [{ name: 'e', channel: 'c', data: 'x'.repeat(17 * 1024) }] }) },
  ];
  for (const c of calls) {
    const before = logLines(n.p.stdout()).filter((l) => l.msg === 'REST request').length;
    assert.equal((await c.call()).status, c.status, c.route);
    const [method, path] = c.route.split(' ');
    await eventually(() => logLines(n.p.stdout()).filter((l) => l.msg === 'REST request').length > before, { timeoutMs: 5000, what: `${c.route} logged` });
    const line = logLines(n.p.stdout()).filter((l) => l.msg === 'REST request').at(-1)!;
    assert.deepEqual({ level: line.level, method: line.method, path: line.path, status: line.status }, { level: DEBUG, method, path, status: c.status }, c.route);
    if (c.status === 200) assert.equal(line.reason, undefined);
    else assert.equal(typeof line.reason, 'string', `${c.route}: the reason of a ${c.status}`);
  }
  const reasons = logLines(n.p.stdout()).filter((l) => l.msg === 'REST request').map((l) => l.reason);
  assert.ok(reasons.includes('Invalid signature') && reasons.includes('The app is disabled') && reasons.includes('App nope does not exist') && reasons.includes('Request body too large'), reasons.join(' | '));
  assert.ok(!n.p.stdout().includes('auth_signature'), 'the signed query is not logged');

  for (const [series, count] of [
    ['ripple_rest_requests_total{app="r1",status="200"}', 2],
    ['ripple_rest_requests_total{app="r1",status="401"}', 2],
    ['ripple_rest_requests_total{app="r2",status="403"}', 1],
    ['ripple_rest_requests_total{app="",status="404"}', 1],
    ['ripple_rest_requests_total{app="r1",status="400"}', 1],
    ['ripple_rest_requests_total{app="r1",status="413"}', 2],
  ] as const) {
    assert.equal(await metric(n.url, series), count, series);
  }
});

test('every webhook attempt is logged with its status or error, and deliveries and retries are counted per app', async () => {
  const good = await WebhookReceiver.start();
  const bad = await WebhookReceiver.start();
  receivers.push(good, bad);
  bad.status = 500;
  const webhook = (url: string) => [{ url: `${url}?token=hook-token-in-query`, event_types: ['channel_occupied'], headers: { authorization: 'Bearer hook-header-secret' } }];
  const n = await debugNode({
    webhooks: { batchMs: 0 },
    apps: [
      { id: 'w1', key: 'w1-key', secret: 'w1-secret-8e2c', webhooks: webhook(good.url) },
      { id: 'w2', key: 'w2-key', secret: 'w2-secret-3f7a', webhooks: webhook(bad.url) },
    ],
  });
  for (const key of ['w1-key', 'w2-key']) await (await connect(n.port, key)).subscribe('room');
  const delivered = await logged(n.p, 'webhook attempt', { app: 'w1' });
  assert.deepEqual({ status: delivered.status, attempt: delivered.attempt, events: delivered.events, url: delivered.url }, { status: 200, attempt: 1, events: 1, url: good.url });
  const failed = await logged(n.p, 'webhook attempt', { app: 'w2', attempt: 1 });
  assert.deepEqual({ error: failed.error, url: failed.url }, { error: 'HTTP 500', url: bad.url });
  await logged(n.p, 'webhook attempt', { app: 'w2', attempt: 2 });
  assert.equal(await metric(n.url, 'ripple_webhook_deliveries_total{app="w1"}'), 1);
  assert.ok((await metric(n.url, 'ripple_webhook_retries_total{app="w2"}')) >= 1);
  assert.equal(await metric(n.url, 'ripple_webhook_deliveries_total{app="w2"}'), 0);
  assert.equal(await metric(n.url, 'ripple_webhook_retries_total{app="w1"}'), 0);
  const out = n.p.stdout();
  assert.ok(!out.includes('hook-token-in-query') && !out.includes('hook-header-secret'), 'the URL query and the endpoint headers are not logged');
});

test('on a terminal the log is human-readable lines; piped, it is JSON lines', async () => {
  const port = await freePort();
  const cli = join(repoRoot, 'src', 'cli.ts');
  // script(1) runs the node on a pseudo-terminal, as in a user's shell.
  const tty = spawn('script', ['-qfec', `exec "${process.execPath}" --import tsx "${cli}" --debug`, '/dev/null'], {
    cwd: repoRoot,
    env: cleanEnv({ PORT: String(port), HOST: '127.0.0.1' }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  tty.stdout!.on('data', (d) => (out += d));
  const exited = new Promise((resolve) => tty.on('exit', resolve));
  try {
    await eventually(() => fetch(`http://127.0.0.1:${port}/health`).then((r) => r.status === 200, () => false), { timeoutMs: 20_000, intervalMs: 100, what: 'the node on a terminal answers' });
    await fetch(`http://127.0.0.1:${port}/apps/app-id/channels`);
    await eventually(() => out.includes('REST request'), { timeoutMs: 5000, what: 'the request logged' });
  } finally {
    tty.kill('SIGTERM');
    await exited;
  }
  const plain = out.replace(/\x1b\[[0-9;]*m/g, '');
  const listening = plain.split(/\r?\n/).find((l) => /\bINFO\b.*: listening/.test(l));
  assert.ok(listening, `a readable "listening" line:\n${plain}`);
  assert.match(listening, /^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: listening \{.*"port":\d+/);
  const request = plain.split(/\r?\n/).find((l) => l.includes('REST request'));
  assert.match(request ?? '', /^\[\d\d:\d\d:\d\d\.\d{3}\] DEBUG: REST request \{.*"status":401/);
  assert.ok(!plain.split(/\r?\n/).some((l) => l.startsWith('{"level"')), 'no JSON lines on a terminal');

  // A node with its output piped, at the default level: one JSON object per line, nothing at debug.
  const n = await debugNode({ apps: [{ id: 'j1', key: 'j1-key', secret: 'j1-secret-0c4d' }] }, []);
  await fetch(`${n.url}/apps/j1/channels`);
  const lines = n.p.stdout().split('\n').filter((l) => l.trim() && !l.startsWith('ripple listening'));
  for (const l of lines) assert.doesNotThrow(() => JSON.parse(l), l);
  assert.ok(lines.some((l) => JSON.parse(l).msg === 'listening'));
  assert.ok(!logLines(n.p.stdout()).some((l) => l.level <= DEBUG), 'no debug lines at the default level');
});
