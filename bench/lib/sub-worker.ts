// Subscriber process of the load generator: opens its share of WebSocket connections with raw Pusher
// frames, then counts the bench events it receives and records their delivery latency.
import WebSocket from 'ws';
import { Histogram } from './hist.js';
import { nowMs } from './clock.js';
import { MARK, type ToSub, type FromSub, type ConnectJob } from './protocol.js';

const send = (m: FromSub) => process.send!(m);

const markBuf = Buffer.from(MARK);
const BAR = 0x7c; // '|'
const hist = new Histogram();
const firstBySeq = new Map<number, number>();
const sockets: WebSocket[] = [];
let receivedWarm = 0;
let receivedMeasured = 0;
let closedEarly = 0;
const closeCodes: Record<string, number> = {};
let firstRecv = Infinity;
let lastRecv = 0;
let closing = false;
let markCpu = process.cpuUsage();
let markWall = nowMs();

/** Parses `<digits>[.<digits>]` or `-<digits>` from buf at i up to '|'. Returns [value, index of '|']. */
function parseNum(buf: Buffer, i: number): [number, number] {
  let neg = false;
  if (buf[i] === 0x2d) {
    neg = true;
    i++;
  }
  let v = 0;
  let scale = 0;
  for (; i < buf.length; i++) {
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

function onEvent(buf: Buffer, at: number): boolean {
  const p = buf.indexOf(markBuf);
  if (p < 0) return false;
  const [t, i] = parseNum(buf, p + markBuf.length);
  if (buf[i] !== BAR) return false;
  const [seq] = parseNum(buf, i + 1);
  if (seq < 0) {
    receivedWarm++;
    return true;
  }
  receivedMeasured++;
  const lat = at - t;
  hist.recordMs(lat);
  const prev = firstBySeq.get(seq);
  if (prev === undefined || lat < prev) firstBySeq.set(seq, lat);
  if (at < firstRecv) firstRecv = at;
  if (at > lastRecv) lastRecv = at;
  return true;
}

function openOne(job: ConnectJob, index: number): Promise<void> {
  const channel = job.oneChannel ? job.channelPrefix : `${job.channelPrefix}${index}`;
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(job.url, { perMessageDeflate: false, skipUTF8Validation: true });
    let subscribed = false;
    const timer = setTimeout(() => {
      ws.terminate();
      reject(new Error(`timeout (${job.timeoutMs} ms) ${subscribed ? '' : 'before subscription_succeeded'}`));
    }, job.timeoutMs);
    ws.on('message', (data: Buffer) => {
      if (subscribed) {
        if (onEvent(data, nowMs())) return;
      }
      let f: { event?: string; channel?: string };
      try {
        f = JSON.parse(data.toString());
      } catch {
        return;
      }
      if (f.event === 'pusher:connection_established') {
        ws.send(JSON.stringify({ event: 'pusher:subscribe', data: { auth: '', channel } }));
      } else if (f.event === 'pusher_internal:subscription_succeeded' && f.channel === channel) {
        subscribed = true;
        clearTimeout(timer);
        sockets.push(ws);
        resolve();
      } else if (f.event === 'pusher:ping') {
        ws.send('{"event":"pusher:pong","data":{}}');
      } else if (f.event === 'pusher:error' || f.event === 'pusher:subscription_error') {
        if (!subscribed) {
          clearTimeout(timer);
          ws.terminate();
          reject(new Error(`${f.event} ${data.toString().slice(0, 200)}`));
        }
      }
    });
    ws.on('error', (err) => {
      if (!subscribed) {
        clearTimeout(timer);
        reject(err);
      }
    });
    ws.on('unexpected-response', (_req, res) => {
      clearTimeout(timer);
      reject(new Error(`HTTP ${res.statusCode} on upgrade`));
    });
    ws.on('close', (code) => {
      if (!subscribed) {
        clearTimeout(timer);
        reject(new Error(`closed ${code} before subscribing`));
      } else if (!closing) {
        closedEarly++;
        closeCodes[code] = (closeCodes[code] ?? 0) + 1;
      }
    });
  });
}

async function connectAll(job: ConnectJob): Promise<void> {
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

process.on('message', (m: ToSub) => {
  switch (m.type) {
    case 'connect':
      connectAll(m).catch((err) => send({ type: 'error', message: String(err) }));
      break;
    case 'mark':
      markCpu = process.cpuUsage();
      markWall = nowMs();
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
      });
      break;
    }
    case 'close': {
      closing = true;
      for (const ws of sockets) ws.terminate();
      send({ type: 'closed' });
      setTimeout(() => process.exit(0), 50);
      break;
    }
  }
});
process.on('disconnect', () => process.exit(0));
send({ type: 'ready' });
