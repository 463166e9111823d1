// pusher-js's HTTP fallback transports (spec §13) over raw HTTP requests: the same handshake
// outcomes, CORS, liveness and close codes as a WebSocket; the session lifecycle across requests
// (rotation, grace period, newest receiver, polling); slow receivers; and malformed input, which
// gets a clear status and never takes the node or another client down.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request, type IncomingMessage } from 'node:http';
import { startNode, defaultApp as app, type NodeHandle } from '../src/testing/harness.js';
import { eventually, sleep } from '../src/testing/eventually.js';
import { rest } from '../src/testing/sign-rest.js';

const GRACE_MS = 800;
const HEARTBEAT_MS = 600;
const MAX_BUFFERED = 512 * 1024;
const MAX_FRAME = 16 * 1024;
const quota = { id: 'quota-id', key: 'quota-key', secret: 'quota-secret', maxConnections: 1 };
const guarded = { id: 'origin-id', key: 'origin-key', secret: 'origin-secret', allowedOrigins: ['http://good.test'] };

let node: NodeHandle;
let lively: NodeHandle;
const open: IncomingMessage[] = [];

before(async () => {
  const env = {
    HTTP_SESSION_GRACE_MS: String(GRACE_MS),
    HTTP_HEARTBEAT_MS: String(HEARTBEAT_MS),
    MAX_BACKPRESSURE_BYTES: String(MAX_BUFFERED),
  };
  [node, lively] = await Promise.all([
    startNode({ env, config: { maxFrameBytes: MAX_FRAME, apps: [{ ...app, enableClientMessages: true }, quota, guarded] } }),
    // Liveness in seconds, as a WebSocket's: ping after 1 s of silence, close 4201 1 s later.
    startNode({ env: { ...env, ACTIVITY_TIMEOUT: '1', PONG_TIMEOUT: '1', HTTP_HEARTBEAT_MS: '60000' } }),
  ]);
});

after(async () => {
  for (const r of open) r.destroy();
  await Promise.all([node?.kill(), lively?.kill()]);
});

let sessionCounter = 0;
/** A fresh `/pusher/app/<key>/<server>/<session>` path, as pusher-js makes one per connection attempt. */
function sessionPath(key = app.key): string {
  return `/pusher/app/${key}/${100 + (sessionCounter++ % 900)}/s${Date.now().toString(36)}${sessionCounter}`;
}

/** What a receive response carried, line by line, with `a` lines unpacked into Pusher frames. */
class Received {
  readonly lines: string[] = [];
  ended = false;
  private partial = '';

  /** Every line read so far is complete (nothing after the last newline). */
  complete(): boolean {
    return this.partial === '';
  }

  feed(text: string): void {
    const parts = (this.partial + text).split('\n');
    this.partial = parts.pop()!;
    this.lines.push(...parts);
  }

  /** The Pusher frames of every `a` line, parsed. */
  frames(): { event: string; channel?: string; data?: unknown }[] {
    return this.lines.filter((l) => l.startsWith('a')).flatMap((l) => (JSON.parse(l.slice(1)) as string[]).map((f) => JSON.parse(f)));
  }

  socketId(): string {
    const f = this.frames().find((x) => x.event === 'pusher:connection_established');
    return f ? (JSON.parse(f.data as string) as { socket_id: string }).socket_id : '';
  }

  close(): [number, string] | undefined {
    const l = this.lines.find((x) => x.startsWith('c'));
    return l ? (JSON.parse(l.slice(1)) as [number, string]) : undefined;
  }
}

interface Stream extends Received {
  status: number;
  headers: IncomingMessage['headers'];
  res: IncomingMessage;
}

/** Opens a receive request (xhr_streaming by default) and resolves once the response headers arrived. */
function receive(
  port: number,
  path: string,
  o: { kind?: 'xhr_streaming' | 'xhr'; origin?: string; query?: string; body?: Buffer; into?: Received } = {},
): Promise<Stream> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = {};
    if (o.origin) headers.origin = o.origin;
    const req = request(
      { host: '127.0.0.1', port, method: 'POST', path: `${path}/${o.kind ?? 'xhr_streaming'}?${o.query ?? 'protocol=7&client=js&version=8.6.0'}`, headers, agent: false },
      (res) => {
        open.push(res);
        const got = Object.assign(new Received(), { status: res.statusCode!, headers: res.headers, res }) as Stream;
        const sink = o.into ?? got;
        res.setEncoding('utf8');
        res.on('data', (d: string) => sink.feed(d));
        res.on('end', () => (got.ended = true));
        res.on('error', () => {});
        resolve(got);
      },
    );
    req.on('error', reject);
    req.end(o.body);
  });
}

/**
 * A receiving client that replaces its stream as pusher-js does: once it has read more than 256 KiB
 * of complete lines from one request, it drops it and opens the next for the same session.
 */
class Follower extends Received {
  requests = 0;
  private current?: IncomingMessage;
  private read = 0;
  private stopped = false;

  constructor(
    private readonly port: number,
    private readonly path: string,
  ) {
    super();
  }

  async start(): Promise<void> {
    this.read = 0;
    this.requests++;
    this.current = (await receive(this.port, this.path, { into: this })).res;
  }

  override feed(text: string): void {
    super.feed(text);
    this.read += text.length;
    if (this.read > 256 * 1024 && this.complete() && !this.stopped) {
      this.current?.destroy();
      void this.start();
    }
  }

  stop(): void {
    this.stopped = true;
    this.current?.destroy();
  }
}

/** One poll: the whole response. */
async function poll(port: number, path: string, origin?: string): Promise<Received & { status: number; ms: number }> {
  const t0 = Date.now();
  const r = await fetch(`http://127.0.0.1:${port}${path}/xhr?protocol=7&client=js&version=8.6.0`, { method: 'POST', headers: origin ? { origin } : {} });
  const got = new Received();
  got.feed(await r.text());
  return Object.assign(got, { status: r.status, ms: Date.now() - t0 });
}

/** An xhr_send with a raw body. */
async function sendRaw(port: number, path: string, body: string | Buffer, headers: Record<string, string> = {}) {
  const r = await fetch(`http://127.0.0.1:${port}${path}/xhr_send?t=1&n=1`, { method: 'POST', body: typeof body === 'string' ? body : new Uint8Array(body), headers: { 'content-type': 'application/json', ...headers } });
  return { status: r.status, text: await r.text(), headers: r.headers };
}

/** An xhr_send of Pusher frames, as pusher-js sends them. */
function send(port: number, path: string, ...frames: object[]) {
  return sendRaw(port, path, JSON.stringify(frames.map((f) => JSON.stringify(f))));
}

function until(s: Received, what: string, check: () => boolean, timeoutMs = 5000): Promise<void> {
  return eventually(check, { timeoutMs, what: () => `${what}; got ${JSON.stringify(s.lines).slice(0, 1500)}` });
}

async function opened(port: number, key = app.key): Promise<{ path: string; s: Stream }> {
  const path = sessionPath(key);
  const s = await receive(port, path);
  await until(s, 'connection_established', () => s.socketId() !== '');
  return { path, s };
}

async function subscribed(port: number, path: string, s: Received, channel: string): Promise<void> {
  assert.equal((await send(port, path, { event: 'pusher:subscribe', data: { channel } })).status, 204);
  await until(s, `subscribed to ${channel}`, () => s.frames().some((f) => f.event === 'pusher_internal:subscription_succeeded' && f.channel === channel));
}

const trigger = (channel: string, name: string, data: unknown, extra: Record<string, unknown> = {}) =>
  rest(node.url, app, 'POST', `/apps/${app.id}/events`, { name, channel, data: JSON.stringify(data), ...extra });

async function metric(n: NodeHandle, prefix: string): Promise<number> {
  const text = await (await fetch(`${n.url}/metrics`)).text();
  return text
    .split('\n')
    .filter((l) => l.startsWith(prefix))
    .reduce((sum, l) => sum + Number(l.split(' ').pop()), 0);
}

test('a new xhr_streaming session: o, then connection_established in an a frame, with CORS for the page origin', async () => {
  const path = sessionPath();
  const s = await receive(node.port, path, { origin: 'http://page.test' });
  assert.equal(s.status, 200);
  assert.equal(s.headers['access-control-allow-origin'], 'http://page.test');
  assert.equal(s.headers['access-control-allow-credentials'], 'true');
  assert.equal(s.headers['cache-control'], 'no-store');
  await until(s, 'connection_established', () => s.socketId() !== '');
  assert.equal(s.lines[0], 'o');
  assert.match(s.socketId(), /^\d+\.\d+$/);
  const established = s.frames()[0];
  assert.equal(JSON.parse(established.data as string).activity_timeout, 120);
  s.res.destroy();
});

test('CORS preflight of every request kind answers 204 with the origin, POST and the asked-for headers', async () => {
  for (const kind of ['xhr_streaming', 'xhr', 'xhr_send']) {
    const r = await fetch(`${node.url}${sessionPath()}/${kind}?t=1`, {
      method: 'OPTIONS',
      headers: { origin: 'http://page.test', 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' },
    });
    assert.equal(r.status, 204, kind);
    assert.equal(r.headers.get('access-control-allow-origin'), 'http://page.test');
    assert.match(r.headers.get('access-control-allow-methods') ?? '', /POST/);
    assert.equal(r.headers.get('access-control-allow-headers'), 'content-type');
  }
});

test('handshake refusals are the WebSocket ones, as pusher:error and a c close frame: unknown key 4001, protocol 4007, origin 4009', async () => {
  const cases: [string, { origin?: string; query?: string }, number][] = [
    [sessionPath('no-such-key'), {}, 4001],
    [sessionPath(), { query: 'protocol=99' }, 4007],
    [sessionPath(guarded.key), { origin: 'http://evil.test' }, 4009],
  ];
  for (const [path, o, code] of cases) {
    const s = await receive(node.port, path, o);
    await until(s, `refusal ${code}`, () => s.ended);
    assert.equal(s.lines[0], 'o');
    const [err] = s.frames();
    assert.equal(err.event, 'pusher:error');
    assert.equal((err.data as { code: number }).code, code);
    assert.equal(s.close()?.[0], code);
    if (o.origin) assert.equal(s.headers['access-control-allow-origin'], o.origin, 'the refused page can read why');
  }
  const ok = await receive(node.port, sessionPath(guarded.key), { origin: 'http://good.test' });
  await until(ok, 'an allowed origin connects', () => ok.socketId() !== '');
  ok.res.destroy();
});

test('the connection quota counts HTTP sessions: a second one gets 4004 until the first is gone', async () => {
  const first = await opened(node.port, quota.key);
  const second = await receive(node.port, sessionPath(quota.key));
  await until(second, '4004', () => second.ended);
  assert.equal(second.close()?.[0], 4004);
  first.s.res.destroy();
  // After the grace period the first session is closed and its place is free again.
  await eventually(
    async () => {
      const third = await receive(node.port, sessionPath(quota.key));
      await until(third, 'an answer', () => third.socketId() !== '' || third.ended);
      third.res.destroy();
      return third.socketId() !== '';
    },
    { timeoutMs: GRACE_MS + 5000, intervalMs: 200, what: 'a place after the first session closed' },
  );
});

test('stream rotation: a new request for the session gets no second o, and what was published in between, on the same socket_id', async () => {
  const { path, s } = await opened(node.port);
  await subscribed(node.port, path, s, 'rotation');
  s.res.destroy();
  await sleep(100);
  assert.equal((await trigger('rotation', 'while-away', { n: 1 })).status, 200);
  const next = await receive(node.port, path);
  await until(next, 'the event published while no request was open', () => next.frames().length > 0);
  assert.notEqual(next.lines[0], 'o');
  assert.deepEqual(next.frames().map((f) => [f.event, f.data]), [['while-away', '{"n":1}']]);
  assert.equal((await send(node.port, path, { event: 'pusher:ping', data: {} })).status, 204, 'the same session still takes sends');
  await until(next, 'pong', () => next.frames().some((f) => f.event === 'pusher:pong'));
  next.res.destroy();
});

test('the newest receive request wins: the older one is ended, frames go to the newer one', async () => {
  const { path, s } = await opened(node.port);
  await subscribed(node.port, path, s, 'overlap');
  const newer = await receive(node.port, path);
  await until(s, 'the older request ended', () => s.ended);
  await trigger('overlap', 'after', { n: 2 });
  await until(newer, 'the event on the newer request', () => newer.frames().length === 1);
  assert.equal(s.frames().filter((f) => f.event === 'after').length, 0);
  newer.res.destroy();
});

test('a session without a receive request for the grace period is closed: its channel is vacated and its id opens a new session', async () => {
  const { path, s } = await opened(node.port);
  const firstId = s.socketId();
  await subscribed(node.port, path, s, 'abandoned');
  s.res.destroy();
  const occupied = async () => ((await rest(node.url, app, 'GET', `/apps/${app.id}/channels/abandoned`)).body as { occupied: boolean }).occupied;
  await sleep(GRACE_MS / 2);
  assert.equal(await occupied(), true, 'kept during the grace period');
  await eventually(async () => !(await occupied()), { timeoutMs: GRACE_MS + 3000, what: 'the channel vacated after the grace period' });
  assert.equal((await send(node.port, path, { event: 'pusher:ping', data: {} })).status, 404, 'the closed session is unknown');
  const again = await receive(node.port, path);
  await until(again, 'a new session', () => again.socketId() !== '');
  assert.equal(again.lines[0], 'o', 'pusher-js sees a second o and knows the server lost its session');
  assert.notEqual(again.socketId(), firstId);
  again.res.destroy();
});

test('polling: the first poll opens the session, a poll with frames queued answers at once, an idle poll ends with h after the heartbeat interval', async () => {
  const path = sessionPath();
  const first = await poll(node.port, path, 'http://page.test');
  assert.equal(first.status, 200);
  assert.equal(first.lines[0], 'o');
  assert.ok(first.socketId(), 'connection_established in the same answer');
  // Three frames queued between two polls come back together, in order.
  assert.equal((await send(node.port, path, { event: 'pusher:subscribe', data: { channel: 'polled' } })).status, 204);
  await sleep(50);
  await trigger('polled', 'one', 1);
  await trigger('polled', 'two', 2);
  const second = await poll(node.port, path);
  assert.deepEqual(second.frames().map((f) => f.event), ['pusher_internal:subscription_succeeded', 'one', 'two']);
  assert.ok(second.ms < HEARTBEAT_MS / 2, `answered at once (${second.ms} ms)`);
  const idle = await poll(node.port, path);
  assert.deepEqual(idle.lines, ['h']);
  assert.ok(idle.ms >= HEARTBEAT_MS - 100, `an idle poll waits (${idle.ms} ms)`);
  // A frame arriving during a waiting poll ends it right away.
  const waiting = poll(node.port, path);
  await sleep(100);
  await trigger('polled', 'three', 3);
  const woke = await waiting;
  assert.deepEqual(woke.frames().map((f) => f.event), ['three']);
  assert.ok(woke.ms < HEARTBEAT_MS, `woken by the frame (${woke.ms} ms)`);
});

test('streams get h heartbeats when quiet, and pusher-js\'s empty send ([]) is answered with activity (a[])', async () => {
  const { path, s } = await opened(node.port);
  const before = s.lines.length;
  await until(s, 'a heartbeat', () => s.lines.slice(before).includes('h'), HEARTBEAT_MS * 3);
  assert.equal((await sendRaw(node.port, path, '[]')).status, 204);
  await until(s, 'a[] after the empty send', () => s.lines.includes('a[]'));
  s.res.destroy();
});

test('liveness is a WebSocket\'s: an idle session is sent pusher:ping, and closed 4201 when nothing answers', async () => {
  const { s } = await opened(lively.port);
  await until(s, 'pusher:ping', () => s.frames().some((f) => f.event === 'pusher:ping'), 4000);
  await until(s, 'close 4201', () => s.close()?.[0] === 4201, 4000);
  assert.ok(s.ended, 'the stream ends after the close frame');
});

test('a receiver that stops reading is closed 4100 (slow consumer) like a WebSocket; a reading client on the same channel gets everything', async () => {
  const slow = await opened(node.port);
  await subscribed(node.port, slow.path, slow.s, 'firehose');
  const goodPath = sessionPath();
  const good = new Follower(node.port, goodPath);
  await good.start();
  await until(good, 'connected', () => good.socketId() !== '');
  await subscribed(node.port, goodPath, good, 'firehose');
  slow.s.res.pause();
  const closed4100 = () => metric(node, `ripple_disconnects_total{app="${app.id}",code="4100"}`);
  const before = await closed4100();
  const pad = 'y'.repeat(9000);
  let sent = 0;
  // Up to ~20 MB: past the kernel's socket buffers and the 512 KiB limit.
  for (let i = 0; i < 240 && (await closed4100()) === before; i++) {
    const batch = Array.from({ length: 10 }, () => ({ channel: 'firehose', name: 'load', data: JSON.stringify({ n: sent++, pad }) }));
    assert.equal((await rest(node.url, app, 'POST', `/apps/${app.id}/batch_events`, { batch })).status, 200);
  }
  await eventually(async () => (await closed4100()) === before + 1, { timeoutMs: 5000, what: 'the slow receiver closed 4100' });
  await trigger('firehose', 'last', { done: true });
  await until(good, 'the reading client got the last event', () => good.frames().some((f) => f.event === 'last'), 10_000);
  const loads = good.frames().filter((f) => f.event === 'load').map((f) => (JSON.parse(f.data as string) as { n: number }).n);
  assert.deepEqual(loads, [...Array(sent).keys()], 'nothing lost or reordered for the reading client');
  assert.ok(good.requests > 1, 'the reading client replaced its stream on the way');
  assert.equal(await closed4100(), before + 1, 'only the slow receiver was closed');
  good.stop();
  slow.s.res.destroy();
});

test('malformed xhr_send bodies get 400 with a reason, unknown sessions 404, bodies over the limit 413; the session and the node keep working', async () => {
  const { path, s } = await opened(node.port);
  for (const body of ['{not json', '{"event":"pusher:ping"}', '[1,2]', '[null]', 'null', '']) {
    const r = await sendRaw(node.port, path, body);
    assert.equal(r.status, 400, `body ${JSON.stringify(body)}`);
    assert.match(r.text, /JSON array of strings/);
  }
  assert.equal((await sendRaw(node.port, path, Buffer.from([0x5b, 0x22, 0xff, 0xfe, 0x22, 0x5d]))).status, 400, 'not UTF-8');
  // A string that is not a Pusher frame is the session's business, answered as on a socket.
  assert.equal((await sendRaw(node.port, path, JSON.stringify(['{oops']))).status, 204);
  await until(s, 'pusher:error for the bad frame', () => s.frames().some((f) => f.event === 'pusher:error'));
  assert.equal((await sendRaw(node.port, path, JSON.stringify(['x'.repeat(MAX_FRAME)]))).status, 413);
  assert.equal((await receive(node.port, sessionPath(), { body: Buffer.alloc(MAX_FRAME + 1, 32) })).status, 413, 'a receive request body over the limit');
  assert.equal((await sendRaw(node.port, sessionPath(), '[]')).status, 404, 'an unknown session');
  for (const bad of ['/pusher/app/app-key/1/a.b/xhr_send', `/pusher/app/app-key/${'9'.repeat(65)}/abc/xhr_send`, '/pusher/app/app-key/1/abc/xhr_other']) {
    const r = await fetch(`${node.url}${bad}`, { method: 'POST', body: '[]' });
    assert.equal(r.status, 404, bad);
  }
  assert.equal((await send(node.port, path, { event: 'pusher:ping', data: {} })).status, 204);
  await until(s, 'the session still answers', () => s.frames().some((f) => f.event === 'pusher:pong'));
  assert.equal((await fetch(`${node.url}/health`)).status, 200);
  s.res.destroy();
});

test('a draining node closes its HTTP sessions with 4200 in a close frame', async () => {
  const n = await startNode({ env: { HTTP_SESSION_GRACE_MS: String(GRACE_MS) } });
  try {
    const streaming = await opened(n.port);
    const stopped = n.stop();
    await until(streaming.s, 'close 4200', () => streaming.s.close()?.[0] === 4200);
    assert.equal((await stopped).code, 0);
  } finally {
    await n.kill();
  }
});
