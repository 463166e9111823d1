// `ripple doctor <url>`: probes a deployment from outside the way pusher-js and a backend would (the
// WebSocket upgrade through whatever proxies sit in front, the HTTP fallback, TLS, a signed REST
// call, and with --webhooks a webhook round trip read from the node's debug console) and prints what
// works and what does not, with the fix (issue 21). It speaks the WebSocket handshake itself over
// node:net/node:tls, so it needs nothing but Node to run on any machine.
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { parseArgs } from 'node:util';
import { readStream, type ConsoleWireEvent } from '../console/events.js';
import { requestSession } from './console-client.js';

const HELP = `Usage: ripple doctor URL --key KEY [--app-id ID --secret SECRET] [options]

Checks a ripple (or any Pusher-protocol) deployment from outside, as pusher-js and your backend
reach it, and prints what works and what does not, with the fix:
  - TLS (for https:// and wss:// URLs)
  - the WebSocket upgrade to /app/KEY (through proxies: the Upgrade headers must be passed on)
  - the app key, the page origin (--origin) and the protocol
  - pusher-js's HTTP fallback (/pusher/app/KEY/.../xhr)
  - a signed REST call (GET /apps/ID/channels), and the clock difference to the server
  - with --webhooks: a webhook round trip (a fresh channel occupied, then vacated; the node's
    delivery of channel_occupied/channel_vacated read from its debug console, so the node needs
    OPERATOR_TOKEN set): each endpoint's status, attempt and time, or what to fix

URL is what pusher-js connects to, with the path prefix if any: https://ws.example.com or
http://127.0.0.1:6001/ws.

Options:
  --key KEY         the app key (as given to pusher-js)
  --app-id ID       the app id, with --secret: also check a signed REST call
  --secret SECRET   the app secret (only used here to sign; never sent)
  --origin ORIGIN   the Origin a browser page would send (default: none)
  --webhooks        also check the webhook round trip (needs --app-id and --secret; waits up to 10 s)
  --timeout MS      each probe's limit (default 5000)
  -h, --help        print this help

Exit code: 0 when every check passed, 1 when one failed, 2 for a usage error.
`;

class Usage extends Error {}

interface Options {
  url: URL;
  key: string;
  appId?: string;
  secret?: string;
  origin?: string;
  timeoutMs: number;
  /** --webhooks: also the webhook round trip, waiting this long for its attempts */
  webhookWaitMs?: number;
}

/** How long the webhook round trip waits for the node's attempts. */
const WEBHOOK_WAIT_MS = 10_000;

type Outcome = { ok: true; what: string } | { ok: false; what: string; fix: string };

export async function run(argv: readonly string[], env: NodeJS.ProcessEnv): Promise<number> {
  let o: Options;
  try {
    o = parse(argv, env);
  } catch (err) {
    if (!(err instanceof Usage)) throw err;
    if (err.message === 'help') {
      process.stdout.write(HELP);
      return 0;
    }
    process.stderr.write(`ripple doctor: ${err.message}\nRun 'ripple doctor --help' for usage.\n`);
    return 2;
  }
  const outcomes: Outcome[] = [];
  const report = (r: Outcome) => {
    outcomes.push(r);
    process.stdout.write(r.ok ? `ok    ${r.what}\n` : `FAIL  ${r.what}\n      fix: ${r.fix}\n`);
  };
  process.stdout.write(`checking ${o.url.href}\n`);
  report(await websocket(o));
  report(await httpFallback(o));
  if (o.appId && o.secret) report(await signedRest(o));
  else process.stdout.write('skip  signed REST call (give --app-id and --secret to check it)\n');
  if (o.webhookWaitMs !== undefined) for (const r of await webhookRoundTrip(o)) report(r);
  const failed = outcomes.filter((r) => !r.ok).length;
  process.stdout.write(failed ? `${failed} check(s) failed\n` : 'every check passed\n');
  return failed ? 1 : 0;
}

const secure = (url: URL) => url.protocol === 'https:' || url.protocol === 'wss:';
const base = (url: URL) => url.pathname.replace(/\/+$/, '');

function socketTo(o: Options): Promise<Socket> {
  const port = Number(o.url.port) || (secure(o.url) ? 443 : 80);
  return new Promise((resolve, reject) => {
    const s = secure(o.url) ? tlsConnect({ host: o.url.hostname, port, servername: o.url.hostname }) : netConnect({ host: o.url.hostname, port });
    s.setTimeout(o.timeoutMs, () => s.destroy(new Error(`no answer within ${o.timeoutMs} ms`)));
    s.once(secure(o.url) ? 'secureConnect' : 'connect', () => resolve(s));
    s.once('error', reject);
  });
}

/** Why a connection failed, for a person. */
function connectFix(err: Error & { code?: string }, o: Options): string {
  if (err.code === 'ECONNREFUSED') return `nothing listens on ${o.url.host}: start ripple, or check the port (PORT, default 6001) and the proxy`;
  if (err.code === 'ENOTFOUND') return `the name ${o.url.hostname} does not resolve: check DNS`;
  if (/certificate|self.signed|CERT/i.test(`${err.code} ${err.message}`)) return `the TLS certificate is not trusted (${err.message}): use a certificate for ${o.url.hostname} from a public CA, with its chain`;
  return err.message;
}

/** A Pusher connection the doctor opened: the socket, the bytes read past the last frame, the socket id. */
interface PusherConnection {
  s: Socket;
  rest: Buffer;
  socketId: string;
}

/** The upgrade pusher-js makes, then the first frame: connection_established or the refusal. */
async function websocket(o: Options): Promise<Outcome> {
  const opened = await openPusher(o);
  if (!opened.ok) return opened;
  opened.conn.s.destroy();
  return { ok: true, what: `${opened.what}: connected (${opened.conn.socketId})` };
}

async function openPusher(o: Options): Promise<{ ok: true; what: string; conn: PusherConnection } | { ok: false; what: string; fix: string }> {
  const path = `${base(o.url)}/app/${encodeURIComponent(o.key)}?protocol=7&client=js&version=8.4.0&flash=false`;
  const what = `WebSocket ${secure(o.url) ? 'wss' : 'ws'}://${o.url.host}${path.split('?')[0]}`;
  let s: Socket;
  try {
    s = await socketTo(o);
  } catch (err) {
    return { ok: false, what, fix: connectFix(err as Error, o) };
  }
  const wsKey = randomBytes(16).toString('base64');
  s.write(
    `GET ${path} HTTP/1.1\r\nHost: ${o.url.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${wsKey}\r\nSec-WebSocket-Version: 13\r\n` +
      `${o.origin ? `Origin: ${o.origin}\r\n` : ''}\r\n`,
  );
  try {
    const { head, rest } = await readHead(s, o.timeoutMs);
    const status = /^HTTP\/1\.\d (\d{3})/.exec(head)?.[1];
    if (status !== '101') {
      s.destroy();
      const fix =
        status === '404' ? `no WebSocket endpoint at ${o.url.pathname.replace(/\/$/, '') || '/'}app/...: check the path prefix (PATH_PREFIX on the node, wsPath in pusher-js)`
        : status === '400' || status === '426' || status === '200' ? 'the upgrade did not reach ripple as one: the proxy must pass Upgrade and Connection headers on (nginx: proxy_http_version 1.1; proxy_set_header Upgrade $http_upgrade; proxy_set_header Connection "upgrade")'
        : `the server answered ${head.split('\r\n')[0]}`;
      return { ok: false, what, fix };
    }
    const accept = createHash('sha1').update(`${wsKey}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
    if (!head.toLowerCase().includes(`sec-websocket-accept: ${accept.toLowerCase()}`)) {
      s.destroy();
      return { ok: false, what, fix: 'the upgrade answer is not a valid WebSocket handshake: something between rewrites it' };
    }
    const frame = await readFrame(s, rest, o.timeoutMs);
    if (frame.close) {
      s.destroy();
      return { ok: false, what, fix: `closed with ${frame.close.code} ${frame.close.reason}` };
    }
    const msg = JSON.parse(frame.text) as { event: string; data?: string };
    if (msg.event === 'pusher:connection_established') return { ok: true, what, conn: { s, rest: frame.rest, socketId: (JSON.parse(msg.data!) as { socket_id: string }).socket_id } };
    s.destroy();
    const err = (typeof msg.data === 'string' ? JSON.parse(msg.data) : msg.data) as { code?: number; message?: string };
    const fix =
      err.code === 4001 ? `the key "${o.key}" is unknown to the server: use the app's key (not its id or secret)`
      : err.code === 4009 ? `the origin ${o.origin ?? '(none)'} is not allowed: add it to the app's allowedOrigins (exactly scheme://host[:port])`
      : err.code === 4003 ? 'the app is disabled: enable it'
      : `${err.code} ${err.message}`;
    return { ok: false, what, fix };
  } catch (err) {
    s.destroy();
    return { ok: false, what, fix: (err as Error).message };
  }
}

/** pusher-js's HTTP fallback: a polling request opens a session ("o"). */
async function httpFallback(o: Options): Promise<Outcome> {
  const http = `${secure(o.url) ? 'https' : 'http'}://${o.url.host}${base(o.url)}`;
  const path = `/pusher/app/${encodeURIComponent(o.key)}/${Math.floor(Math.random() * 1000)}/${randomBytes(6).toString('hex')}/xhr`;
  const what = `HTTP fallback ${http}${path.replace(/\/[^/]+\/[^/]+\/xhr$/, '/…/xhr')}`;
  try {
    const res = await fetch(`${http}${path}?protocol=7&client=js&version=8.4.0`, { method: 'POST', signal: AbortSignal.timeout(o.timeoutMs), headers: o.origin ? { origin: o.origin } : {} });
    const body = await res.text();
    if (res.ok && body.startsWith('o')) return { ok: true, what: `${what}: a session opens` };
    return { ok: false, what, fix: res.status === 404 ? 'the fallback path is not routed to ripple: route <prefix>/pusher/ to it as well as <prefix>/app/' : `answered ${res.status} ${body.slice(0, 80)}` };
  } catch (err) {
    return { ok: false, what, fix: connectFix(((err as Error).cause ?? err) as Error, o) };
  }
}

/** GET /apps/<id>/channels signed as the pusher SDKs sign; the server's Date tells the clock difference. */
async function signedRest(o: Options): Promise<Outcome> {
  const http = `${secure(o.url) ? 'https' : 'http'}://${o.url.host}`;
  const path = `${base(o.url)}/apps/${encodeURIComponent(o.appId!)}/channels`;
  const q: Record<string, string> = { auth_key: o.key, auth_timestamp: String(Math.floor(Date.now() / 1000)), auth_version: '1.0' };
  const qs = Object.keys(q).sort().map((k) => `${k}=${q[k]}`).join('&');
  const signature = createHmac('sha256', o.secret!).update(`GET\n${path}\n${qs}`).digest('hex');
  const what = `REST GET ${http}${path}`;
  try {
    const res = await fetch(`${http}${path}?${qs}&auth_signature=${signature}`, { signal: AbortSignal.timeout(o.timeoutMs) });
    const skew = res.headers.get('date') ? Math.round((Date.now() - Date.parse(res.headers.get('date')!)) / 1000) : 0;
    const body = await res.text();
    if (res.ok) return { ok: true, what: `${what}: signed call accepted${Math.abs(skew) > 60 ? ` (this clock is ${skew} s off the server's)` : ''}` };
    const error = (() => {
      try {
        return (JSON.parse(body) as { error?: string }).error ?? body;
      } catch {
        return body.slice(0, 80);
      }
    })();
    const fix =
      res.status === 404 && /does not exist/.test(error) ? `no app has the id "${o.appId}": use the app's id`
      : res.status === 404 ? 'the REST API is not routed to ripple at this path: route <prefix>/apps/ to it'
      : /Timestamp expired/.test(error) ? `the clocks differ by ${skew} s: set this machine's (or the server's) clock with NTP`
      : /Unknown auth_key/.test(error) ? `the key "${o.key}" is not app ${o.appId}'s key`
      : /Invalid signature/.test(error) ? `the secret is not app ${o.appId}'s, or a proxy changes the path (ripple checks the path it receives, prefix included)`
      : `${res.status} ${error}`;
    return { ok: false, what, fix };
  } catch (err) {
    return { ok: false, what, fix: connectFix(((err as Error).cause ?? err) as Error, o) };
  }
}

/** The events the round trip causes: a fresh public channel subscribed, then left. */
const ROUND_TRIP_EVENTS = ['channel_occupied', 'channel_vacated'] as const;

/** A `webhook` event of the console's stream (src/webhooks/delivery.ts fills its detail). */
interface WebhookAttempt {
  url: string;
  attempt: number;
  events: string;
  status?: number;
  error?: string;
  ms: number;
  deadLetter?: boolean;
}

/**
 * The webhook round trip: watch the app's debug-console stream (the app's own key and secret open a
 * session), make a fresh channel occupied and then vacated over a WebSocket of the app, and read the
 * node's webhook attempts for those events: one line per endpoint, with its status, attempt and time.
 */
async function webhookRoundTrip(o: Options): Promise<Outcome[]> {
  const what = `webhook round trip (${ROUND_TRIP_EVENTS.join(', ')})`;
  const feed = await openConsoleFeed(o);
  if ('fix' in feed) return [{ ok: false, what, fix: feed.fix }];
  try {
    // Each node that taps the app says `watching` to this stream (also when another console watches it already).
    await feed.wait(() => feed.events.some((ev) => ev.type === 'watching'), Math.min(o.timeoutMs, 2000));
    const caused = await occupyAndVacate(o);
    if (!caused.ok) return [{ ok: false, what, fix: `the round trip needs a WebSocket to the app: ${caused.fix}` }];
    const attempts = await collectAttempts(feed, o.webhookWaitMs!);
    return judgeAttempts(o, what, attempts);
  } finally {
    feed.close();
  }
}

/** Subscribes `doctor-<random>` (channel_occupied), waits for the server's yes, leaves it (channel_vacated). */
async function occupyAndVacate(o: Options): Promise<{ ok: true } | { ok: false; fix: string }> {
  const opened = await openPusher(o);
  if (!opened.ok) return opened;
  const { s } = opened.conn;
  const channel = `doctor-${randomBytes(6).toString('hex')}`;
  try {
    writeFrame(s, JSON.stringify({ event: 'pusher:subscribe', data: { channel } }));
    let rest = opened.conn.rest;
    for (;;) {
      const frame = await readFrame(s, rest, o.timeoutMs);
      if (frame.close) return { ok: false, fix: `closed with ${frame.close.code} ${frame.close.reason}` };
      rest = frame.rest;
      const msg = JSON.parse(frame.text) as { event: string; channel?: string; data?: unknown };
      if (msg.event === 'pusher_internal:subscription_succeeded' && msg.channel === channel) break;
      if (msg.event === 'pusher:error' || msg.event === 'pusher:subscription_error') return { ok: false, fix: `subscribing ${channel} was refused: ${JSON.stringify(msg.data)}` };
    }
    writeFrame(s, JSON.stringify({ event: 'pusher:unsubscribe', data: { channel } }));
    return { ok: true };
  } catch (err) {
    return { ok: false, fix: (err as Error).message };
  } finally {
    s.end();
  }
}

/** The attempts for the round trip's events, until each endpoint delivered both or dead-lettered, or `waitMs` passed. */
async function collectAttempts(feed: ConsoleFeed, waitMs: number): Promise<WebhookAttempt[]> {
  const attempts = () => feed.events.filter((ev) => ev.type === 'webhook').map((ev) => ev.detail as unknown as WebhookAttempt).filter((a) => ROUND_TRIP_EVENTS.some((name) => a.events.split(',').includes(name)));
  const settled = () => {
    const all = attempts();
    if (!all.length) return false;
    return [...new Set(all.map((a) => a.url))].every((url) => {
      const mine = all.filter((a) => a.url === url);
      return mine.some((a) => a.deadLetter) || ROUND_TRIP_EVENTS.every((name) => mine.some((a) => a.status !== undefined && a.events.split(',').includes(name)));
    });
  };
  await feed.wait(settled, waitMs);
  return attempts();
}

/** One outcome per endpoint: delivered (status, attempt, time) or what to fix; a failure when none answered. */
function judgeAttempts(o: Options, what: string, attempts: WebhookAttempt[]): Outcome[] {
  const waited = `${o.webhookWaitMs! / 1000} s`;
  if (!attempts.length)
    return [{ ok: false, what, fix: `no webhook attempt for ${ROUND_TRIP_EVENTS.join(' or ')} within ${waited}: app ${o.appId} has no webhook for these events (add one, e.g. {"url": "https://...", "event_types": ["channel_occupied", "channel_vacated"]}), or its webhooks are queued behind others` }];
  const outcomes: Outcome[] = [];
  for (const url of new Set(attempts.map((a) => a.url))) {
    const mine = attempts.filter((a) => a.url === url);
    const last = mine[mine.length - 1];
    const delivered = ROUND_TRIP_EVENTS.filter((name) => mine.some((a) => a.status !== undefined && a.events.split(',').includes(name)));
    const line = `webhook ${url}: ${last.status !== undefined ? `status ${last.status}` : last.error}, attempt ${last.attempt}, ${last.ms} ms`;
    if (last.status !== undefined) {
      const missing = ROUND_TRIP_EVENTS.filter((name) => !delivered.includes(name));
      outcomes.push({ ok: true, what: `${line} (${delivered.join(', ')} delivered${missing.length ? `; no ${missing.join(', ')} within ${waited}: not among this webhook's event types?` : ''})` });
      continue;
    }
    outcomes.push({ ok: false, what: line, fix: attemptFix(last, mine.length, waited) });
  }
  return outcomes;
}

function attemptFix(last: WebhookAttempt, attempts: number, waited: string): string {
  const status = Number(/^HTTP (\d{3})/.exec(last.error ?? '')?.[1]);
  const why =
    status >= 400 && status < 500 ? `the endpoint refused the webhook (HTTP ${status}): check its URL and that it verifies X-Pusher-Signature with this app's key and secret`
    : status >= 500 ? `the endpoint failed (HTTP ${status}): see its logs; it must answer 2xx`
    : /no answer within/.test(last.error ?? '') ? `the endpoint did not answer in time (${last.error}): answer first, work later (or raise WEBHOOK_TIMEOUT_MS)`
    : /ECONNREFUSED/.test(last.error ?? '') ? 'nothing listens at the webhook URL (as the node sees it): start the receiver or fix the URL'
    : /ENOTFOUND|EAI_AGAIN/.test(last.error ?? '') ? "the webhook URL's host does not resolve from the node: fix the URL or the node's DNS"
    : `the delivery failed: ${last.error}`;
  if (last.deadLetter) return `${why}; dead-lettered after ${last.attempt} attempts: replay it from the console's dead letters once the endpoint works`;
  return `${why} (${attempts} failed attempt${attempts === 1 ? '' : 's'} in ${waited}; the node keeps retrying, then dead-letters it)`;
}

interface ConsoleFeed {
  events: ConsoleWireEvent[];
  /** Resolves true once `holds()` (checked on every event), false after `ms`. */
  wait(holds: () => boolean, ms: number): Promise<boolean>;
  close(): void;
}

/** The app's debug-console stream (webhook and watching events), opened with a session its key and secret sign. */
async function openConsoleFeed(o: Options): Promise<ConsoleFeed | { fix: string }> {
  const http = `${secure(o.url) ? 'https' : 'http'}://${o.url.host}`;
  const api = `${base(o.url)}/ripple/console/api/apps/${encodeURIComponent(o.appId!)}`;
  const off = 'the debug console is off on this node, and the round trip reads webhook attempts from it: set OPERATOR_TOKEN on the server (any value the operator keeps secret)';
  const abort = new AbortController();
  try {
    const session = await requestSession(`${http}${api}`, o.key, o.secret!, AbortSignal.timeout(o.timeoutMs));
    // Without the console its routes fall through to the REST API's 404; an unknown app id says so.
    if (session.status === 404 && !/does not exist/.test(session.error ?? '')) return { fix: off };
    if (session.status !== 200 || !session.token) return { fix: `the console refused app ${o.appId}'s key and secret (${session.status} ${session.error ?? ''})` };
    const stream = await fetch(`${http}${api}/stream?type=webhook,watching`, { headers: { authorization: `Bearer ${session.token}` }, signal: abort.signal });
    if (!stream.ok || !stream.body) return { fix: `the console's stream answered ${stream.status} ${await stream.text()}` };
    const events: ConsoleWireEvent[] = [];
    const waiters = new Set<() => void>();
    void readStream(stream.body, (ev) => {
      events.push(ev);
      for (const w of [...waiters]) w();
    }).catch(() => {});
    const wait = (holds: () => boolean, ms: number) =>
      new Promise<boolean>((resolve) => {
        if (holds()) return resolve(true);
        const check = () => holds() && done(true);
        const t = setTimeout(() => done(false), ms);
        const done = (v: boolean) => {
          clearTimeout(t);
          waiters.delete(check);
          resolve(v);
        };
        waiters.add(check);
      });
    return { events, wait, close: () => abort.abort() };
  } catch (err) {
    abort.abort();
    return { fix: connectFix(((err as Error).cause ?? err) as Error, o) };
  }
}

/** One text frame from the client side (masked, as RFC 6455 requires of clients). */
function writeFrame(s: Socket, text: string): void {
  const payload = Buffer.from(text, 'utf8');
  const mask = randomBytes(4);
  const len = payload.length;
  const head = len < 126 ? Buffer.from([0x81, 0x80 | len]) : Buffer.from([0x81, 0x80 | 126, len >> 8, len & 0xff]);
  const masked = Buffer.alloc(len);
  for (let i = 0; i < len; i++) masked[i] = payload[i] ^ mask[i % 4];
  s.write(Buffer.concat([head, mask, masked]));
}

function readHead(s: Socket, timeoutMs: number): Promise<{ head: string; rest: Buffer }> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const t = setTimeout(() => done(new Error(`no answer to the upgrade within ${timeoutMs} ms`)), timeoutMs);
    const onData = (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      const end = buf.indexOf('\r\n\r\n');
      if (end >= 0) done(undefined, { head: buf.subarray(0, end).toString('latin1'), rest: buf.subarray(end + 4) });
    };
    const onEnd = () => done(new Error(`the connection closed during the upgrade${buf.length ? `: ${buf.toString('latin1').split('\r\n')[0]}` : ''}`));
    const done = (err?: Error, v?: { head: string; rest: Buffer }) => {
      clearTimeout(t);
      s.off('data', onData).off('end', onEnd).off('error', done);
      if (err) reject(err);
      else resolve(v!);
    };
    s.on('data', onData).on('end', onEnd).on('error', done);
  });
}

interface Frame {
  text: string;
  close?: { code: number; reason: string };
  /** what was read past this frame */
  rest: Buffer;
}

/** The server's next WebSocket frame (servers do not mask): text, or a close with its code. */
function readFrame(s: Socket, initial: Buffer, timeoutMs: number): Promise<Frame> {
  return new Promise((resolve, reject) => {
    let buf = initial;
    const t = setTimeout(() => finish(new Error(`no Pusher frame within ${timeoutMs} ms after the upgrade`)), timeoutMs);
    const attempt = () => {
      if (buf.length < 2) return;
      const opcode = buf[0] & 0x0f;
      let len = buf[1] & 0x7f;
      let at = 2;
      if (len === 126) {
        if (buf.length < 4) return;
        len = buf.readUInt16BE(2);
        at = 4;
      } else if (len === 127) {
        if (buf.length < 10) return;
        len = Number(buf.readBigUInt64BE(2));
        at = 10;
      }
      if (buf.length < at + len) return;
      const payload = buf.subarray(at, at + len);
      const rest = buf.subarray(at + len);
      if (opcode === 8) return finish(undefined, { text: '', close: { code: payload.length >= 2 ? payload.readUInt16BE(0) : 1005, reason: payload.subarray(2).toString('utf8') }, rest });
      finish(undefined, { text: payload.toString('utf8'), rest });
    };
    const onData = (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      attempt();
    };
    const finish = (err?: Error, v?: Frame) => {
      clearTimeout(t);
      s.off('data', onData);
      if (err) reject(err);
      else resolve(v!);
    };
    s.on('data', onData);
    attempt();
  });
}

function parse(argv: readonly string[], env: NodeJS.ProcessEnv): Options {
  const { values, positionals } = parseArgs({
    args: [...argv],
    options: {
      key: { type: 'string' },
      'app-id': { type: 'string' },
      secret: { type: 'string' },
      origin: { type: 'string' },
      timeout: { type: 'string' },
      webhooks: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
    allowPositionals: true,
  });
  if (values.help) throw new Usage('help');
  if (positionals.length !== 1) throw new Usage(positionals.length ? `unexpected argument ${positionals[1]}` : 'the URL to check is needed');
  let url: URL;
  try {
    url = new URL(positionals[0]);
  } catch {
    throw new Usage(`not a URL: ${positionals[0]}`);
  }
  if (!['http:', 'https:', 'ws:', 'wss:'].includes(url.protocol)) throw new Usage('the URL must be http(s):// or ws(s)://');
  const key = values.key ?? env.APP_KEY;
  if (!key) throw new Usage('--key is needed (the app key pusher-js is given)');
  if (!!values['app-id'] !== !!(values.secret ?? env.APP_SECRET) && values['app-id']) throw new Usage('--app-id needs --secret');
  if (values.timeout !== undefined && !/^\d+$/.test(values.timeout)) throw new Usage('--timeout takes milliseconds');
  const secret = values.secret ?? env.APP_SECRET;
  if (values.webhooks && !(values['app-id'] && secret)) throw new Usage('--webhooks needs --app-id and --secret (they open the app\'s debug console)');
  return { url, key, appId: values['app-id'], secret, origin: values.origin, timeoutMs: Number(values.timeout ?? 5000), webhookWaitMs: values.webhooks ? WEBHOOK_WAIT_MS : undefined };
}
