// Subscriber process of the load generator. It opens its share of WebSocket connections (raw Pusher
// frames over lib/rawws.ts; or pusher-js-style HTTP streaming sessions over lib/rawxhr.ts when the URL is
// http://), subscribes each to its channel (public, private or presence, signing the
// auth itself), then, depending on the scenario:
//   - counts the bench events it receives and records their delivery latency (fanout, cross-node);
//   - sends client events on its sockets at a fixed rate (client-events; the pair partner receives them);
//   - churns presence subscriptions: subscribe → subscription_succeeded → unsubscribe → subscribe ...
//     (presence), counting joins and their latency, and the member_added/removed frames observers get.
// Event frames are recognised by the marker (Buffer.indexOf on the raw frame, no JSON parsing).
import { createHmac } from 'node:crypto';
import { RawWs } from './rawws.js';
import { RawXhr } from './rawxhr.js';
import { Histogram } from './hist.js';
import { nowMs } from './clock.js';
import { MARK, CLIENT_EVENT_NAME, type ToSub, type FromSub, type ConnectJob, type ClientEventsJob, type ChurnJob } from './protocol.js';

const send = (m: FromSub) => process.send!(m);

const markBuf = Buffer.from(MARK);
const BAR = 0x7c; // '|'
const memberAddedBuf = Buffer.from('pusher_internal:member_added');
const memberRemovedBuf = Buffer.from('pusher_internal:member_removed');
let hist = new Histogram();
let firstBySeq = new Map<number, number>();
let trackFirst = true;

interface Sock {
  ws: RawWs | RawXhr;
  index: number;
  socketId: string;
  channel: string;
  /** presence churn: send time of the pending subscribe, or 0 */
  joinSentAt: number;
  churning: boolean;
}
const sockets: Sock[] = [];
let receivedWarm = 0;
let receivedMeasured = 0;
let memberEvents = 0;
let closedEarly = 0;
const closeCodes: Record<string, number> = {};
let firstRecv = Infinity;
let lastRecv = 0;
let closing = false;
let markCpu = process.cpuUsage();
let markWall = nowMs();
let sentWarm = 0;
let sentMeasured = 0;
let joins = 0;
let joinErrors = 0;
let churnStop = true;

/** Parses `<digits>[.<digits>]` or `-<digits>` from buf at i. Returns [value, index after it]. */
function parseNum(buf: Buffer, i: number, end: number): [number, number] {
  let neg = false;
  if (buf[i] === 0x2d) {
    neg = true;
    i++;
  }
  let v = 0;
  let scale = 0;
  for (; i < end; i++) {
    const c = buf[i];
    if (c >= 0x30 && c <= 0x39) {
      v = v * 10 + (c - 0x30);
      if (scale) scale *= 10;
    } else if (c === 0x2e) {
      scale = 1;
    } else break;
  }
  if (scale) v /= scale;
  return [neg ? -v : v, i];
}

/** A bench event (marker found): records it and returns true. */
function onEvent(buf: Buffer, start: number, end: number, at: number): boolean {
  const p = buf.indexOf(markBuf, start);
  if (p < 0 || p >= end) return false;
  const [t, i] = parseNum(buf, p + markBuf.length, end);
  if (buf[i] !== BAR) return false;
  const [seq] = parseNum(buf, i + 1, end);
  if (seq < 0) {
    receivedWarm++;
    return true;
  }
  receivedMeasured++;
  const lat = at - t;
  hist.recordMs(lat);
  if (trackFirst) {
    const prev = firstBySeq.get(seq);
    if (prev === undefined || lat < prev) firstBySeq.set(seq, lat);
  }
  if (at < firstRecv) firstRecv = at;
  if (at > lastRecv) lastRecv = at;
  return true;
}

function hmac(secret: string, s: string): string {
  return createHmac('sha256', secret).update(s).digest('hex');
}

function subscribeFrame(job: ConnectJob, s: Sock): string {
  const channel = s.channel;
  if (channel.startsWith('presence-')) {
    const channelData = JSON.stringify({ user_id: `u${s.index}`, user_info: { n: s.index } });
    const auth = `${job.key}:${hmac(job.secret, `${s.socketId}:${channel}:${channelData}`)}`;
    return JSON.stringify({ event: 'pusher:subscribe', data: { channel, auth, channel_data: channelData } });
  }
  if (channel.startsWith('private-')) {
    const auth = `${job.key}:${hmac(job.secret, `${s.socketId}:${channel}`)}`;
    return JSON.stringify({ event: 'pusher:subscribe', data: { channel, auth } });
  }
  if (job.recovery) return JSON.stringify({ event: 'pusher:subscribe', data: { auth: '', channel, ripple_recovery: {} } });
  return JSON.stringify({ event: 'pusher:subscribe', data: { auth: '', channel } });
}

function channelFor(job: ConnectJob, index: number): string {
  if (job.layout === 'one') return job.channelPrefix;
  if (job.layout === 'pairs') return `${job.channelPrefix}${Math.floor(index / 2)}`;
  if (job.layout === 'groups') return `${job.channelPrefix}${index % (job.groups ?? 1)}`;
  return `${job.channelPrefix}${index}`;
}

let churnJob: ChurnJob | null = null;
let connectJob: ConnectJob | null = null;

/** Frames that are not bench events: JSON-parsed (handshake, subscription replies, pings, presence). */
function onControl(s: Sock, text: string, at: number): { event?: string; channel?: string; data?: unknown } | null {
  let f: { event?: string; channel?: string; data?: unknown };
  try {
    f = JSON.parse(text);
  } catch {
    return null;
  }
  if (f.event === 'pusher:ping') s.ws.send('{"event":"pusher:pong","data":{}}');
  else if (s.churning && f.event === 'pusher_internal:subscription_succeeded' && f.channel === s.channel && s.joinSentAt) {
    joins++;
    hist.recordMs(at - s.joinSentAt);
    s.joinSentAt = 0;
    if (churnStop) {
      s.churning = false;
      return f;
    }
    // leave, then join again at once (the server handles frames of one socket in order)
    s.ws.send(JSON.stringify({ event: 'pusher:unsubscribe', data: { channel: s.channel } }));
    s.joinSentAt = nowMs();
    s.ws.send(subscribeFrame(connectJob!, s));
  } else if (s.churning && (f.event === 'pusher:error' || f.event === 'pusher:subscription_error')) {
    joinErrors++;
  }
  return f;
}

function openOne(job: ConnectJob, index: number): Promise<void> {
  const local = job.localAddresses?.[index % job.localAddresses.length];
  const opening = job.url.startsWith('http') ? RawXhr.open(job.url, job.timeoutMs) : RawWs.open(job.url, job.timeoutMs, local);
  return opening.then(
    (ws) =>
      new Promise<void>((resolve, reject) => {
        const s: Sock = { ws, index, socketId: '', channel: channelFor(job, index), joinSentAt: 0, churning: false };
        let subscribed = false;
        const timer = setTimeout(() => {
          ws.terminate();
          reject(new Error(`timeout (${job.timeoutMs} ms) ${s.socketId ? 'before subscription_succeeded' : 'before connection_established'}`));
        }, job.timeoutMs);
        ws.onFrame = (buf, start, end) => {
          const at = nowMs();
          if (subscribed) {
            if (onEvent(buf, start, end, at)) return;
            const mi = buf.indexOf(memberAddedBuf, start);
            if ((mi >= 0 && mi < end) || ((mi < 0 || mi >= end) && buf.indexOf(memberRemovedBuf, start) >= 0 && buf.indexOf(memberRemovedBuf, start) < end)) {
              memberEvents++;
              return;
            }
            onControl(s, ws.frameText(buf, start, end), at);
            return;
          }
          const f = onControl(s, ws.frameText(buf, start, end), at);
          if (!f) return;
          if (f.event === 'pusher:connection_established') {
            const d = typeof f.data === 'string' ? JSON.parse(f.data) : f.data;
            s.socketId = d.socket_id;
            if (job.noSubscribe) {
              subscribed = true;
              clearTimeout(timer);
              sockets.push(s);
              resolve();
              return;
            }
            ws.send(subscribeFrame(job, s));
          } else if (f.event === 'pusher_internal:subscription_succeeded' && f.channel === s.channel) {
            subscribed = true;
            clearTimeout(timer);
            sockets.push(s);
            resolve();
          } else if (f.event === 'pusher:error' || f.event === 'pusher:subscription_error') {
            clearTimeout(timer);
            ws.terminate();
            reject(new Error(`${f.event} ${buf.toString('utf8', start, Math.min(end, start + 200))}`));
          }
        };
        ws.onClose = (code) => {
          if (!subscribed) {
            clearTimeout(timer);
            reject(new Error(`closed ${code} before subscribing`));
          } else if (!closing) {
            closedEarly++;
            closeCodes[code] = (closeCodes[code] ?? 0) + 1;
          }
        };
      }),
  );
}

async function connectAll(job: ConnectJob): Promise<void> {
  connectJob = job;
  trackFirst = job.layout === 'one';
  const start = nowMs();
  const cpu0 = process.cpuUsage();
  let next = 0;
  let ok = 0;
  let failed = 0;
  const errors: string[] = [];
  const lane = async () => {
    while (next < job.count) {
      const i = job.first + next++;
      try {
        await openOne(job, i);
        ok++;
      } catch (err) {
        failed++;
        if (errors.length < 5) errors.push(String((err as Error).message ?? err));
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(job.concurrency, job.count) }, lane));
  const cpu = process.cpuUsage(cpu0);
  send({ type: 'connected', ok, failed, startMs: start, endMs: nowMs(), cpuMs: (cpu.user + cpu.system) / 1000, errors });
}

/** Client events: every socket sends `rate` events/s on its channel (spread evenly over time). */
async function clientEvents(job: ClientEventsJob): Promise<void> {
  const padding = 'x'.repeat(job.payloadBytes);
  const n = sockets.length;
  const total = job.ratePerSocket * n; // events/s from this process
  const interval = 1000 / total;
  const t0 = nowMs();
  const measureStart = t0 + job.warmupMs;
  const end = measureStart + job.durationMs;
  let i = 0;
  let seqWarm = -1;
  let seq = 0;
  let marked = false;
  await new Promise<void>((resolve) => {
    const tick = () => {
      const now = nowMs();
      if (!marked && now >= measureStart) {
        marked = true;
        send({ type: 'measuring', atMs: now });
      }
      if (now >= end) return resolve();
      while (t0 + i * interval <= now) {
        const s = sockets[i % n];
        i++;
        if (s.ws.closed) continue;
        const t = nowMs();
        const measured = t >= measureStart;
        const id = measured ? seq++ : seqWarm--;
        if (measured) sentMeasured++;
        else sentWarm++;
        s.ws.send(`{"event":"${CLIENT_EVENT_NAME}","channel":"${s.channel}","data":"${MARK}${t.toFixed(3)}|${id}|${padding}"}`);
      }
      setTimeout(tick, Math.max(0, Math.floor(t0 + i * interval - nowMs())));
    };
    tick();
  });
  send({ type: 'sent', sentWarm, sentMeasured });
}

/** Presence churn on the sockets whose index % every === 0 (the others stay as observers). */
function startChurn(job: ChurnJob): void {
  churnJob = job;
  churnStop = false;
  for (const s of sockets) {
    if (s.index % job.every !== 0) continue;
    s.churning = true;
    s.ws.send(JSON.stringify({ event: 'pusher:unsubscribe', data: { channel: s.channel } }));
    s.joinSentAt = nowMs();
    s.ws.send(subscribeFrame(connectJob!, s));
  }
}

process.on('message', (m: ToSub) => {
  switch (m.type) {
    case 'connect':
      connectAll(m).catch((err) => send({ type: 'error', message: String(err) }));
      break;
    case 'client-events':
      clientEvents(m).catch((err) => send({ type: 'error', message: String(err) }));
      break;
    case 'churn':
      startChurn(m);
      break;
    case 'churn-stop':
      churnStop = true;
      break;
    case 'mark':
      markCpu = process.cpuUsage();
      markWall = nowMs();
      joins = 0;
      joinErrors = 0;
      memberEvents = 0;
      hist = new Histogram();
      break;
    case 'reset':
      hist = new Histogram();
      firstBySeq = new Map();
      receivedWarm = 0;
      receivedMeasured = 0;
      firstRecv = Infinity;
      lastRecv = 0;
      sentWarm = 0;
      sentMeasured = 0;
      send({ type: 'reset-done' });
      break;
    case 'count':
      send({ type: 'count', received: receivedWarm + receivedMeasured, closedEarly });
      break;
    case 'report': {
      const cpu = process.cpuUsage(markCpu);
      send({
        type: 'report',
        connections: sockets.length,
        receivedWarm,
        receivedMeasured,
        closedEarly,
        closeCodes,
        firstRecvMs: Number.isFinite(firstRecv) ? firstRecv : 0,
        lastRecvMs: lastRecv,
        hist: hist.toSparse(),
        firstBySeq: [...firstBySeq],
        cpuMs: (cpu.user + cpu.system) / 1000,
        wallMs: nowMs() - markWall,
        sentWarm,
        sentMeasured,
        joins,
        joinErrors,
        memberEvents,
      });
      break;
    }
    case 'close': {
      closing = true;
      for (const s of sockets) s.ws.terminate();
      send({ type: 'closed' });
      setTimeout(() => process.exit(0), 50);
      break;
    }
  }
});
process.on('disconnect', () => process.exit(0));
send({ type: 'ready' });
void churnJob;
