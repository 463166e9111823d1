// Scenario `fanout` (and `cross-node`): N subscribers on one public channel; events triggered through the
// signed REST API. Two phases on one server start:
//   1. fixed rate (--rate, default 50,000 deliveries/s ÷ N): delivered msgs/s, delivery latency
//      (REST send → WebSocket receive) p50/p99/max, losses, server and generator CPU;
//   2. ramp (unless --no-ramp): the trigger rate is raised by --ramp-factor every --step seconds from
//      --ramp-start until a step fails (p99 ≥ --p99-limit ms, a lost delivery, a socket closed by the
//      server, or the publisher unable to hold the rate); reported: the highest rate held, in triggers/s
//      and delivered msgs/s.
// cross-node: two nodes of the target share a private redis-server; subscribers connect to node A and
// the triggers go to node B (Soketi runs its redis adapter).
// --transport xhr (ripple only): the subscribers are pusher-js-style HTTP streaming sessions
// (xhr_streaming, lib/rawxhr.ts) instead of WebSockets; everything else is the same.
import { parseArgs, num, str, flag } from '../lib/args.js';
import { LoadGen } from '../lib/loadgen.js';
import { Histogram } from '../lib/hist.js';
import { nowMs } from '../lib/clock.js';
import { procCpuMs, procMem, procTree, countSyscalls, sleep, machineCpu, loadAvg } from '../lib/proc.js';
import { startTarget, startRedis, callgrindCollect, benchApp, withRecovery, type TargetName, type Target, type Redis } from '../lib/targets.js';
import { commonOptions, prepareGenerator, environment, saveResult, parseTarget, fmt, isMain, type CommonOptions } from '../lib/common.js';

export interface FanoutOptions extends CommonOptions {
  target: TargetName;
  subscribers: number;
  rate: number; // events/s of the fixed phase, 0 = closed loop
  duration: number; // s, measured (fixed phase)
  warmup: number; // s
  payload: number; // padding bytes in each event's data
  inflight: number; // concurrent REST requests
  concurrency: number; // connection handshakes in flight per subscriber process
  ramp: boolean;
  rampStart: number; // events/s of the first ramp step
  rampFactor: number;
  step: number; // s per ramp step (after 0.5 s warm-up)
  maxSteps: number;
  p99Limit: number; // ms
  cross: boolean; // two nodes through redis: subscribers on A, triggers on B
  transport: 'ws' | 'xhr'; // how the subscribers connect
  syscalls: boolean; // count the server's system calls (perf stat on syscall tracepoints) in the fixed phase
}

export function fanoutOptions(args: ReturnType<typeof parseArgs>, cross = false): FanoutOptions {
  const subscribers = num(args, 'subs', num(args, 'subscribers', 1000));
  return {
    ...commonOptions(args),
    target: parseTarget(str(args, 'target', 'ripple')),
    subscribers,
    rate: num(args, 'rate', Math.max(1, Math.round(50_000 / subscribers))),
    duration: num(args, 'duration', 5),
    warmup: num(args, 'warmup', 1),
    payload: num(args, 'payload', 64),
    inflight: num(args, 'inflight', 16),
    concurrency: num(args, 'concurrency', 50),
    ramp: !flag(args, 'no-ramp'),
    rampStart: num(args, 'ramp-start', Math.max(1, Math.round(20_000 / subscribers))),
    rampFactor: num(args, 'ramp-factor', 1.5),
    step: num(args, 'step', 2),
    maxSteps: num(args, 'max-steps', 12),
    p99Limit: num(args, 'p99-limit', 100),
    cross: cross || flag(args, 'cross'),
    transport: transportOf(str(args, 'transport', 'ws')),
    syscalls: flag(args, 'syscalls'),
  };
}

function transportOf(v: string): FanoutOptions['transport'] {
  if (v !== 'ws' && v !== 'xhr') throw new Error(`--transport must be ws or xhr, got ${v}`);
  return v;
}

/** Where the subscribers connect: a WebSocket URL, or the base of pusher-js's HTTP streaming paths. */
function subscriberUrl(o: FanoutOptions, port: number): string {
  const query = `protocol=7&client=js&version=8.4.0`;
  if (o.transport === 'ws') return `ws://127.0.0.1:${port}/app/${benchApp.key}?${query}&flash=false`;
  if (o.target !== 'ripple' && !o.target.startsWith('ripple@')) throw new Error(`--transport xhr: ${o.target} has no HTTP streaming transport`);
  return `http://127.0.0.1:${port}/pusher/app/${benchApp.key}?${query}`;
}

export interface Phase {
  rate: number;
  achievedRate: number;
  triggersOk: number;
  triggersFailed: number;
  triggerErrors: string[];
  maxLagMs: number;
  reqP50Ms: number;
  reqP99Ms: number;
  expected: number;
  received: number;
  lost: number;
  deliveredPerSec: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  p999Ms: number;
  maxMs: number;
  meanMs: number;
  firstP50Ms: number;
  firstP99Ms: number;
  drainMs: number;
  closedEarly: number;
  closeCodes: Record<string, number>;
  serverCpuPct: number; // all server-side processes (nodes + redis), % of one core
  serverCpuUsPerDelivered: number;
  /** the server's system calls (and sendto/writev among them) per delivery, warm-up included; NaN without perf */
  syscallsPerDelivered: number;
  sendsPerDelivered: number;
  /** cross-node: the redis-server's share, µs per trigger (NaN on one node) */
  redisCpuUsPerTrigger: number;
  genCpuPct: number;
  subCpuPct: number;
  pubCpuPct: number;
  otherPct: number;
  stealPct: number;
  /** why the phase does not count as held (ramp), or '' */
  fail: string;
}

export interface FanoutResult {
  scenario: 'fanout' | 'cross-node';
  target: TargetName;
  describe: string;
  params: Record<string, unknown>;
  env: Record<string, unknown>;
  connect: { ok: number; failed: number; perSec: number; errors: string[] };
  fixed: Phase;
  ramp: { steps: Phase[]; maxHeldRate: number; maxHeldMsgsPerSec: number; stoppedBy: string } | null;
  server: { pids: number[]; affinity: string; rssEnd: number; hwm: number; loadBefore: number };
  ok: boolean;
  notes: string[];
}

interface Rig {
  sub: Target; // subscribers connect here
  pub: Target; // triggers go here
  pids: number[]; // every server-side process (for CPU)
  /** cross-node: the shared redis-server, whose CPU is also reported on its own */
  redisPid?: number;
  describe: string;
  stop(): Promise<void>;
}

async function startRig(o: FanoutOptions): Promise<Rig> {
  const base = { serverCpus: o.pin.serverCpus, rippleRev: o.rippleRev, cpuProfDir: o.cpuProfDir, callgrindDir: o.callgrindDir, rippleWorkers: o.rippleWorkers };
  if (!o.cross) {
    const t = await startTarget(o.target, { ...base, redis: o.redis });
    return { sub: t, pub: t, pids: [t.pid, ...t.extraPids], describe: t.describe, stop: () => t.stop() };
  }
  if (o.target === 'bare') throw new Error('bare has no cluster mode: cross-node runs ripple and soketi only');
  const redis: Redis = await startRedis(o.pin.serverCpus);
  let a: Target | null = null;
  let b: Target | null = null;
  try {
    a = await startTarget(o.target, { ...base, redisPort: redis.port });
    b = await startTarget(o.target, { ...base, redisPort: redis.port });
  } catch (err) {
    if (a) await a.stop();
    await redis.proc.stop(2000);
    throw err;
  }
  const A = a;
  const B = b;
  return {
    sub: A,
    pub: B,
    pids: [A.pid, B.pid, redis.proc.pid],
    redisPid: redis.proc.pid,
    describe: `2 × ${A.describe.replace(/ \+ redis-server.*/, '')}, shared redis-server :${redis.port}; subscribers on node A, triggers to node B`,
    async stop() {
      await Promise.all([A.stop(), B.stop()]);
      await redis.proc.stop(2000);
    },
  };
}

function cpuOf(pids: number[]): number {
  let t = 0;
  for (const p of pids) {
    try {
      t += procCpuMs(p);
    } catch {
      /* exited */
    }
  }
  return t;
}

async function phase(o: FanoutOptions, rig: Rig, gen: LoadGen, subs: number, rate: number, durationS: number, warmupS: number, quietMs: number): Promise<Phase> {
  await gen.reset();
  // callgrind: instructions counted over the whole phase (warm-up included), per delivery received
  if (o.callgrindDir) for (const t of new Set([rig.sub, rig.pub])) callgrindCollect(t.pid, true);
  // the server's system calls over the whole phase (warm-up included), per delivery received
  const syscalls = o.syscalls ? countSyscalls(rig.pids.flatMap((p) => procTree(p))) : null;
  let serverCpu0 = cpuOf(rig.pids);
  let redisCpu0 = rig.redisPid ? cpuOf([rig.redisPid]) : 0;
  let t0 = nowMs();
  let mach0 = machineCpu();
  const pub = await gen.publish(
    {
      baseUrl: `http://127.0.0.1:${rig.pub.port}`,
      appId: benchApp.id,
      key: benchApp.key,
      secret: benchApp.secret,
      channel: 'bench-fanout',
      rate,
      durationMs: durationS * 1000,
      warmupMs: warmupS * 1000,
      payloadBytes: o.payload,
      inflight: o.inflight,
    },
    () => {
      serverCpu0 = cpuOf(rig.pids);
      redisCpu0 = rig.redisPid ? cpuOf([rig.redisPid]) : 0;
      mach0 = machineCpu();
      t0 = nowMs();
    },
  );
  const expected = pub.ok * subs;
  const drain = await gen.drain(expected, quietMs, 20_000);
  if (o.callgrindDir) for (const t of new Set([rig.sub, rig.pub])) callgrindCollect(t.pid, false);
  const sys = syscalls ? await syscalls.stop() : null;
  const t1 = nowMs();
  const serverCpu1 = cpuOf(rig.pids);
  const redisCpuMs = rig.redisPid ? cpuOf([rig.redisPid]) - redisCpu0 : NaN;
  const mach1 = machineCpu();
  const d = await gen.report();
  const windowMs = t1 - t0;
  const pubReq = new Histogram();
  pubReq.merge(pub.reqLatency);
  const received = d.receivedWarm + d.receivedMeasured;
  const deliverWindow = (Math.max(d.lastRecvMs, pub.measureStartMs + 1) - pub.measureStartMs) / 1000;
  const serverCpuMs = serverCpu1 - serverCpu0;
  const pubCpuPct = (pub.cpuMs / windowMs) * 100;
  const subCpuPct = (d.subCpuMs / windowMs) * 100;
  const achievedRate = pub.okMeasured / durationS;
  const otherPct = Math.max(0, ((mach1.busyMs - mach0.busyMs - serverCpuMs - pub.cpuMs - d.subCpuMs) / windowMs) * 100);
  const p99 = d.hist.quantileMs(0.99);
  let fail = '';
  if (received < expected) fail = `lost ${expected - received}`;
  else if (d.closedEarly) fail = `${d.closedEarly} sockets closed by the server`;
  else if (pub.failed) fail = `${pub.failed} triggers failed`;
  else if (rate > 0 && achievedRate < rate * 0.95) fail = `publisher held only ${achievedRate.toFixed(0)}/s`;
  else if (!(p99 < o.p99Limit)) fail = `p99 ${p99.toFixed(1)} ms ≥ ${o.p99Limit} ms`;
  return {
    rate,
    achievedRate,
    triggersOk: pub.ok,
    triggersFailed: pub.failed,
    triggerErrors: pub.errors,
    maxLagMs: pub.maxLagMs,
    reqP50Ms: pubReq.quantileMs(0.5),
    reqP99Ms: pubReq.quantileMs(0.99),
    expected,
    received,
    lost: Math.max(0, expected - received),
    deliveredPerSec: d.receivedMeasured / deliverWindow,
    p50Ms: d.hist.quantileMs(0.5),
    p90Ms: d.hist.quantileMs(0.9),
    p99Ms: p99,
    p999Ms: d.hist.quantileMs(0.999),
    maxMs: d.hist.max / 1000,
    meanMs: d.hist.total ? d.hist.sum / d.hist.total / 1000 : NaN,
    firstP50Ms: d.firstHist.quantileMs(0.5),
    firstP99Ms: d.firstHist.quantileMs(0.99),
    drainMs: drain.waitedMs,
    closedEarly: d.closedEarly,
    closeCodes: d.closeCodes,
    serverCpuPct: (serverCpuMs / windowMs) * 100,
    serverCpuUsPerDelivered: d.receivedMeasured ? (serverCpuMs * 1000) / d.receivedMeasured : NaN,
    syscallsPerDelivered: sys && received ? sys.all / received : NaN,
    sendsPerDelivered: sys && received ? sys.sends / received : NaN,
    redisCpuUsPerTrigger: pub.okMeasured ? (redisCpuMs * 1000) / pub.okMeasured : NaN,
    genCpuPct: pubCpuPct + subCpuPct,
    subCpuPct,
    pubCpuPct,
    otherPct,
    stealPct: ((mach1.stealMs - mach0.stealMs) / windowMs) * 100,
    fail,
  };
}

export async function runFanout(o: FanoutOptions): Promise<FanoutResult> {
  const rig = await startRig(o);
  let gen: LoadGen | null = null;
  const notes: string[] = [];
  try {
    gen = await LoadGen.start(o.workers, true);
    const conn = await gen.connect({
      url: subscriberUrl(o, rig.sub.port),
      total: o.subscribers,
      channelPrefix: 'bench-fanout',
      layout: 'one',
      recovery: withRecovery(o.target),
      key: benchApp.key,
      secret: benchApp.secret,
      concurrencyPerWorker: o.concurrency,
      timeoutMs: 30_000,
    });
    if (conn.failed) notes.push(`${conn.failed} of ${o.subscribers} subscribers failed to subscribe: ${conn.errors.join('; ')}`);
    // cross-node: let node B learn about node A's subscription (ripple: redis interest; soketi: pub/sub)
    await sleep(o.cross ? 1000 : 500);
    const loadBefore = loadAvg();
    const fixed = await phase(o, rig, gen, conn.ok, o.rate, o.duration, o.warmup, 3000);
    if (fixed.otherPct > 25) notes.push(`other CPU load on the machine during the fixed phase: ${fixed.otherPct.toFixed(0)}% of a core (interference?)`);
    if (fixed.fail) notes.push(`fixed phase: ${fixed.fail}${fixed.triggerErrors.length ? ` (${fixed.triggerErrors.join('; ')})` : ''}`);
    if (fixed.genCpuPct > 85) notes.push(`generator used ${fixed.genCpuPct.toFixed(0)}% of its core in the fixed phase: it may be the bottleneck`);
    let ramp: FanoutResult['ramp'] = null;
    if (o.ramp && !fixed.closedEarly) {
      const steps: Phase[] = [];
      let rate = o.rampStart;
      let held = 0;
      let stoppedBy = `max steps (${o.maxSteps})`;
      for (let i = 0; i < o.maxSteps; i++) {
        const p = await phase(o, rig, gen, conn.ok, Math.round(rate), o.step, 0.5, 1000);
        steps.push(p);
        if (p.fail) {
          stoppedBy = `${Math.round(rate)}/s: ${p.fail}${p.genCpuPct > 90 ? ` (generator at ${p.genCpuPct.toFixed(0)}% of its core)` : ''}`;
          break;
        }
        held = Math.round(rate);
        rate *= o.rampFactor;
      }
      const heldStep = steps.filter((s) => !s.fail).at(-1);
      ramp = { steps, maxHeldRate: held, maxHeldMsgsPerSec: heldStep ? heldStep.deliveredPerSec : 0, stoppedBy };
      const gsat = steps.find((s) => s.genCpuPct > 90);
      if (gsat) notes.push(`ramp: generator at ${gsat.genCpuPct.toFixed(0)}% of its core from ${gsat.rate}/s: the max rate may be the generator's`);
    }
    const mem = procMem(rig.sub.pid);
    if (!rig.sub.alive() || !rig.pub.alive()) notes.push(`server exited during the run:\n${rig.sub.output().slice(-2000)}`);
    if (!o.pin.enabled) notes.push(`not pinned (${o.pin.note}): server and generator share cores`);
    return {
      scenario: o.cross ? 'cross-node' : 'fanout',
      target: o.target,
      describe: o.transport === 'xhr' ? `${rig.describe}; subscribers on xhr_streaming` : rig.describe,
      params: {
        ...(o.transport === 'xhr' ? { transport: 'xhr' } : {}),
        subscribers: o.subscribers,
        rate: o.rate,
        duration: o.duration,
        warmup: o.warmup,
        payload: o.payload,
        inflight: o.inflight,
        workers: o.workers,
        redis: o.redis || o.cross,
        cross: o.cross,
        ramp: o.ramp ? { start: o.rampStart, factor: o.rampFactor, step: o.step, p99Limit: o.p99Limit } : false,
      },
      env: environment(o),
      connect: { ok: conn.ok, failed: conn.failed, perSec: conn.perSec, errors: conn.errors },
      fixed,
      ramp,
      server: { pids: rig.pids, affinity: rig.sub.affinity, rssEnd: mem.rss, hwm: mem.hwm, loadBefore },
      ok: conn.failed === 0 && fixed.lost === 0 && fixed.triggersFailed === 0 && rig.sub.alive(),
      notes,
    };
  } finally {
    if (gen) await gen.close();
    await rig.stop();
  }
}

export function summarizeFanout(r: FanoutResult): string {
  const d = r.fixed;
  const lines = [
    `${r.scenario} → ${r.target}: ${r.describe}`,
    `  ${r.params.subscribers} subscribers (${r.connect.ok} ok, ${fmt.n(r.connect.perSec)} conn/s); fixed phase: ` +
      `${d.rate || 'max'} triggers/s requested → ${fmt.n(d.achievedRate, 1)}/s for ${r.params.duration}s (+${r.params.warmup}s warm-up), ` +
      `REST p50 ${fmt.ms(d.reqP50Ms)} p99 ${fmt.ms(d.reqP99Ms)}`,
    `  delivered ${fmt.n(d.deliveredPerSec)} msgs/s; latency p50 ${fmt.ms(d.p50Ms)}  p90 ${fmt.ms(d.p90Ms)}  p99 ${fmt.ms(d.p99Ms)}  ` +
      `p99.9 ${fmt.ms(d.p999Ms)}  max ${fmt.ms(d.maxMs)}; first subscriber per event p50 ${fmt.ms(d.firstP50Ms)} p99 ${fmt.ms(d.firstP99Ms)}`,
    `  expected ${fmt.n(d.expected)} received ${fmt.n(d.received)} lost ${fmt.n(d.lost)}` + (d.closedEarly ? `  closed by server ${d.closedEarly}` : ''),
    `  server cpu ${fmt.n(d.serverCpuPct, 0)}% of core ${r.server.affinity} (${fmt.n(d.serverCpuUsPerDelivered, 3)} µs/delivered msg${Number.isFinite(d.syscallsPerDelivered) ? `, ${fmt.n(d.syscallsPerDelivered, 3)} syscalls and ${fmt.n(d.sendsPerDelivered, 3)} sends/delivered msg` : ''}), ` +
      `RSS ${fmt.bytes(r.server.rssEnd)}; generator cpu ${fmt.n(d.genCpuPct, 0)}% ` +
      `(subscribers ${fmt.n(d.subCpuPct, 0)}%, publisher ${fmt.n(d.pubCpuPct, 0)}%) on cpu ${String(r.env.generatorAffinity)}`,
    `  ${String(r.env.pinning)}; other CPU on the machine ${fmt.n(d.otherPct, 0)}% of a core, steal ${fmt.n(d.stealPct, 1)}%`,
  ];
  if (r.ramp) {
    lines.push(
      `  ramp: highest rate held (p99 < ${(r.params.ramp as { p99Limit: number }).p99Limit} ms, no loss) ${fmt.n(r.ramp.maxHeldRate)} triggers/s = ` +
        `${fmt.n(r.ramp.maxHeldMsgsPerSec)} msgs/s; stopped at ${r.ramp.stoppedBy}`,
    );
    lines.push(
      '  steps: ' +
        r.ramp.steps
          .map((s) => `${s.rate}/s→${fmt.n(s.deliveredPerSec / 1000, 0)}k msg/s p99 ${fmt.ms(s.p99Ms)} srv ${fmt.n(s.serverCpuPct, 0)}% gen ${fmt.n(s.genCpuPct, 0)}%${s.fail ? ' ✗' : ''}`)
          .join(' | '),
    );
  }
  for (const n of r.notes) lines.push(`  NOTE: ${n}`);
  return lines.join('\n');
}

if (isMain(import.meta.url)) {
  const o = fanoutOptions(parseArgs());
  prepareGenerator(o);
  const r = await runFanout(o);
  console.log(JSON.stringify(r));
  console.log(summarizeFanout(r));
  if (o.save) saveResult(r.scenario, r);
  process.exit(0);
}
