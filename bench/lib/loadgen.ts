// Coordinator of the load generator: forks subscriber processes (the WebSocket clients are spread over
// them) and one publisher process, hands out work over IPC and merges their results. The processes
// inherit this process's CPU affinity (see pinSelf), so the whole generator stays on its core.
import { fork, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Histogram } from './hist.js';
import { nowMs } from './clock.js';
import type { FromSub, ToSub, ConnectResult, ConnectJob, SubReport, FromPub, PublishJob, PubReport, ClientEventsJob } from './protocol.js';

const here = dirname(fileURLToPath(import.meta.url));

class Child<In, Out extends { type: string }> {
  readonly proc: ChildProcess;
  private waiters: { type: string; resolve: (m: Out) => void; reject: (e: Error) => void }[] = [];
  private listeners: ((m: Out) => void)[] = [];
  private exited = false;

  constructor(file: string) {
    this.proc = fork(join(here, file), [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    this.proc.on('message', (m: Out) => {
      for (const l of this.listeners) l(m);
      if (m.type === 'error') {
        for (const w of this.waiters.splice(0)) w.reject(new Error(`${file}: ${(m as unknown as { message: string }).message}`));
        return;
      }
      const i = this.waiters.findIndex((w) => w.type === m.type);
      if (i >= 0) this.waiters.splice(i, 1)[0].resolve(m);
    });
    this.proc.on('exit', (code) => {
      this.exited = true;
      for (const w of this.waiters.splice(0)) w.reject(new Error(`${file} exited (${code})`));
    });
  }

  on(l: (m: Out) => void): void {
    this.listeners.push(l);
  }

  next<T extends Out['type']>(type: T): Promise<Extract<Out, { type: T }>> {
    return new Promise((resolve, reject) => {
      if (this.exited) return reject(new Error('child exited'));
      this.waiters.push({ type, resolve: resolve as (m: Out) => void, reject });
    });
  }

  send(m: In): void {
    if (!this.exited) this.proc.send(m as object);
  }

  async kill(): Promise<void> {
    if (this.exited) return;
    const done = new Promise((r) => this.proc.once('exit', r));
    this.proc.kill('SIGKILL');
    await done;
  }
}

/** Local ports one client address has towards one server address and port (net.ipv4.ip_local_port_range). */
function portsPerAddress(): number {
  try {
    const [low, high] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    if (high >= low) return high - low + 1;
  } catch {
    // not Linux: assume Linux's default range
  }
  return 28_232;
}

/**
 * The client addresses for `upTo` connections to a loopback server: 127.0.0.1 alone (left to the
 * system) while one address has the ports, else as many of 127.0.0.1, 127.0.0.2, ... (all of
 * 127.0.0.0/8 is local on Linux) as needed, each kept 2,000 ports short of its range for whatever
 * else connects meanwhile (the server's Redis clients, the publisher).
 */
export function clientAddresses(url: string, upTo: number): string[] | undefined {
  if (new URL(url).hostname !== '127.0.0.1') return undefined;
  const n = Math.ceil(upTo / Math.max(1000, portsPerAddress() - 2000));
  return n > 1 ? Array.from({ length: n }, (_, i) => `127.0.0.${i + 1}`) : undefined;
}

export interface ConnectSummary {
  requested: number;
  ok: number;
  failed: number;
  ms: number;
  perSec: number;
  /** generator CPU during the connect phase, % of one core */
  genCpuPct: number;
  errors: string[];
}

export interface DeliverySummary {
  connections: number;
  receivedWarm: number;
  receivedMeasured: number;
  closedEarly: number;
  closeCodes: Record<string, number>;
  firstRecvMs: number;
  lastRecvMs: number;
  hist: Histogram;
  /** per event, latency to its first delivery (lowest over all subscribers) */
  firstHist: Histogram;
  subCpuMs: number;
  subWallMs: number;
  sentWarm: number;
  sentMeasured: number;
  joins: number;
  joinErrors: number;
  memberEvents: number;
}

export class LoadGen {
  private subs: Child<ToSub, FromSub>[] = [];
  private pub: Child<PublishJob, FromPub> | null = null;

  static async start(workers: number, withPublisher: boolean): Promise<LoadGen> {
    const g = new LoadGen();
    for (let i = 0; i < workers; i++) g.subs.push(new Child<ToSub, FromSub>('sub-worker.ts'));
    if (withPublisher) g.pub = new Child<PublishJob, FromPub>('pub-worker.ts');
    await Promise.all([...g.subs.map((s) => s.next('ready')), ...(g.pub ? [g.pub.next('ready')] : [])]);
    return g;
  }

  get workers(): number {
    return this.subs.length;
  }

  /** Opens `total` subscribed connections spread evenly over the subscriber processes. */
  async connect(opts: {
    url: string;
    total: number;
    channelPrefix: string;
    layout: ConnectJob['layout'];
    groups?: number;
    key: string;
    secret: string;
    noSubscribe?: boolean;
    recovery?: boolean;
    concurrencyPerWorker: number;
    timeoutMs: number;
    firstIndex?: number;
  }): Promise<ConnectSummary> {
    const n = this.subs.length;
    let first = opts.firstIndex ?? 0;
    const waits: Promise<ConnectResult>[] = [];
    for (let w = 0; w < n; w++) {
      const count = Math.floor(opts.total / n) + (w < opts.total % n ? 1 : 0);
      if (count === 0) continue;
      const p = this.subs[w].next('connected');
      this.subs[w].send({
        type: 'connect',
        url: opts.url,
        first,
        count,
        channelPrefix: opts.channelPrefix,
        layout: opts.layout,
        groups: opts.groups,
        key: opts.key,
        secret: opts.secret,
        noSubscribe: opts.noSubscribe,
        recovery: opts.recovery,
        concurrency: opts.concurrencyPerWorker,
        timeoutMs: opts.timeoutMs,
        localAddresses: clientAddresses(opts.url, (opts.firstIndex ?? 0) + opts.total),
      });
      first += count;
      waits.push(p);
    }
    const res = await Promise.all(waits);
    const start = Math.min(...res.map((r) => r.startMs));
    const end = Math.max(...res.map((r) => r.endMs));
    const ok = res.reduce((a, r) => a + r.ok, 0);
    return {
      requested: opts.total,
      ok,
      failed: res.reduce((a, r) => a + r.failed, 0),
      ms: end - start,
      perSec: ok / ((end - start) / 1000),
      genCpuPct: (res.reduce((a, r) => a + r.cpuMs, 0) / (end - start)) * 100,
      errors: res.flatMap((r) => r.errors).slice(0, 5),
    };
  }

  /** Runs the publisher; `onMeasuring` fires when the warm-up is over (subscribers are marked then). */
  async publish(job: Omit<PublishJob, 'type'>, onMeasuring: () => void): Promise<PubReport> {
    if (!this.pub) throw new Error('no publisher');
    const pub = this.pub;
    const measuring = pub.next('measuring').then(() => {
      for (const s of this.subs) s.send({ type: 'mark' });
      onMeasuring();
    });
    const done = pub.next('done');
    pub.send({ type: 'publish', ...job });
    const report = await done;
    await Promise.race([measuring, Promise.resolve()]);
    return report;
  }

  /** Starts the measured window in every subscriber process (CPU, histogram, join counters). */
  mark(): void {
    for (const s of this.subs) s.send({ type: 'mark' });
  }

  /** Clears received counters and histograms (between the steps of a rate ramp). */
  async reset(): Promise<void> {
    await Promise.all(
      this.subs.map((s) => {
        const p = s.next('reset-done');
        s.send({ type: 'reset' });
        return p;
      }),
    );
  }

  /** Every socket sends client events; marks each process when its warm-up ends. Returns events sent. */
  async clientEvents(job: Omit<ClientEventsJob, 'type'>, onMeasuring: () => void): Promise<{ sentWarm: number; sentMeasured: number }> {
    let first = true;
    const res = await Promise.all(
      this.subs.map((s) => {
        s.next('measuring').then(
          () => {
            s.send({ type: 'mark' });
            if (first) {
              first = false;
              onMeasuring();
            }
          },
          () => undefined,
        );
        const p = s.next('sent');
        s.send({ type: 'client-events', ...job });
        return p;
      }),
    );
    return { sentWarm: res.reduce((a, r) => a + r.sentWarm, 0), sentMeasured: res.reduce((a, r) => a + r.sentMeasured, 0) };
  }

  churn(every: number): void {
    for (const s of this.subs) s.send({ type: 'churn', every });
  }

  churnStop(): void {
    for (const s of this.subs) s.send({ type: 'churn-stop' });
  }

  async received(): Promise<{ received: number; closedEarly: number }> {
    const res = await Promise.all(
      this.subs.map((s) => {
        const p = s.next('count');
        s.send({ type: 'count' });
        return p;
      }),
    );
    return {
      received: res.reduce((a, r) => a + r.received, 0),
      closedEarly: res.reduce((a, r) => a + r.closedEarly, 0),
    };
  }

  /** Waits until `expected` events arrived, or nothing arrived for `quietMs`, or `maxMs` passed. */
  async drain(expected: number, quietMs: number, maxMs: number): Promise<{ received: number; waitedMs: number }> {
    const start = nowMs();
    let last = -1;
    let lastChange = start;
    for (;;) {
      const { received } = await this.received();
      const now = nowMs();
      if (received >= expected) return { received, waitedMs: now - start };
      if (received !== last) {
        last = received;
        lastChange = now;
      }
      if (now - lastChange > quietMs || now - start > maxMs) return { received, waitedMs: now - start };
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  async report(): Promise<DeliverySummary> {
    const res: SubReport[] = await Promise.all(
      this.subs.map((s) => {
        const p = s.next('report');
        s.send({ type: 'report' });
        return p;
      }),
    );
    const hist = new Histogram();
    for (const r of res) hist.merge(r.hist);
    const first = new Map<number, number>();
    for (const r of res)
      for (const [seq, ms] of r.firstBySeq) {
        const prev = first.get(seq);
        if (prev === undefined || ms < prev) first.set(seq, ms);
      }
    const firstHist = new Histogram();
    for (const ms of first.values()) firstHist.recordMs(ms);
    const closeCodes: Record<string, number> = {};
    for (const r of res) for (const [k, v] of Object.entries(r.closeCodes)) closeCodes[k] = (closeCodes[k] ?? 0) + v;
    const firsts = res.map((r) => r.firstRecvMs).filter((x) => x > 0);
    return {
      connections: res.reduce((a, r) => a + r.connections, 0),
      receivedWarm: res.reduce((a, r) => a + r.receivedWarm, 0),
      receivedMeasured: res.reduce((a, r) => a + r.receivedMeasured, 0),
      closedEarly: res.reduce((a, r) => a + r.closedEarly, 0),
      closeCodes,
      firstRecvMs: firsts.length ? Math.min(...firsts) : 0,
      lastRecvMs: Math.max(0, ...res.map((r) => r.lastRecvMs)),
      hist,
      firstHist,
      subCpuMs: res.reduce((a, r) => a + r.cpuMs, 0),
      subWallMs: Math.max(...res.map((r) => r.wallMs)),
      sentWarm: res.reduce((a, r) => a + r.sentWarm, 0),
      sentMeasured: res.reduce((a, r) => a + r.sentMeasured, 0),
      joins: res.reduce((a, r) => a + r.joins, 0),
      joinErrors: res.reduce((a, r) => a + r.joinErrors, 0),
      memberEvents: res.reduce((a, r) => a + r.memberEvents, 0),
    };
  }

  /** Closes every client socket and ends the child processes (only the ones this generator forked). */
  async close(): Promise<void> {
    await Promise.all(
      this.subs.map(async (s) => {
        const p = s.next('closed').catch(() => undefined);
        s.send({ type: 'close' });
        await Promise.race([p, new Promise((r) => setTimeout(r, 2000))]);
        await s.kill();
      }),
    );
    if (this.pub) await this.pub.kill();
  }
}
