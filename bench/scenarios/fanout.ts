// Scenario `fanout`: N subscribers on one public channel; events triggered through the signed REST API
// at a fixed rate; measures delivered messages/s, delivery latency (REST send → WebSocket receive),
// losses, and the CPU used by the server and by the generator.
// Run: node --import tsx bench/scenarios/fanout.ts --target bare --subscribers 1000 --rate 200 --duration 10
import { parseArgs, num, str } from '../lib/args.js';
import { LoadGen } from '../lib/loadgen.js';
import { Histogram } from '../lib/hist.js';
import { nowMs } from '../lib/clock.js';
import { procCpuMs, procMem, sleep, machineCpu, loadAvg } from '../lib/proc.js';
import { startTarget, benchApp, type TargetName } from '../lib/targets.js';
import { commonOptions, prepareGenerator, environment, saveResult, parseTarget, fmt, isMain, type CommonOptions } from '../lib/common.js';

export interface FanoutOptions extends CommonOptions {
  target: TargetName;
  subscribers: number;
  rate: number; // events/s, 0 = closed loop
  duration: number; // s, measured
  warmup: number; // s
  payload: number; // padding bytes in each event's data
  inflight: number; // concurrent REST requests
  concurrency: number; // connection handshakes in flight per subscriber process
}

export function fanoutOptions(args: ReturnType<typeof parseArgs>): FanoutOptions {
  return {
    ...commonOptions(args),
    target: parseTarget(str(args, 'target', 'bare')),
    subscribers: num(args, 'subscribers', 1000),
    rate: num(args, 'rate', 200),
    duration: num(args, 'duration', 10),
    warmup: num(args, 'warmup', 1),
    payload: num(args, 'payload', 64),
    inflight: num(args, 'inflight', 16),
    concurrency: num(args, 'concurrency', 50),
  };
}

export interface FanoutResult {
  scenario: 'fanout';
  target: TargetName;
  describe: string;
  params: Record<string, unknown>;
  env: Record<string, unknown>;
  connect: { ok: number; failed: number; perSec: number; errors: string[] };
  publish: {
    requestedRate: number;
    achievedRate: number;
    ok: number;
    okMeasured: number;
    failed: number;
    errors: string[];
    maxLagMs: number;
    reqP50Ms: number;
    reqP99Ms: number;
  };
  delivery: {
    expected: number;
    received: number;
    lost: number;
    expectedMeasured: number;
    receivedMeasured: number;
    deliveredPerSec: number;
    p50Ms: number;
    p90Ms: number;
    p99Ms: number;
    p999Ms: number;
    maxMs: number;
    meanMs: number;
    /** per event: latency until its first subscriber got it (least affected by the generator's read time) */
    firstP50Ms: number;
    firstP99Ms: number;
    drainMs: number;
    closedEarly: number;
    closeCodes: Record<string, number>;
  };
  server: { pid: number; affinity: string; cpuPct: number; cpuUsPerDelivered: number; rssEnd: number; hwm: number };
  generator: { cpuPct: number; subCpuPct: number; pubCpuPct: number; saturated: boolean; workers: number };
  /** interference check: CPU used on the machine by anything but the server and the generator (incl. kernel
   * network work not charged to them), % of one core; steal time; 1-min load average before the run */
  machine: { otherPct: number; stealPct: number; loadBefore: number };
  ok: boolean;
  notes: string[];
}

export async function runFanout(o: FanoutOptions): Promise<FanoutResult> {
  const target = await startTarget(o.target, { serverCpus: o.pin.serverCpus, source: o.source, redis: o.redis });
  let gen: LoadGen | null = null;
  const notes: string[] = [];
  try {
    gen = await LoadGen.start(o.workers, true);
    const conn = await gen.connect({
      url: `ws://127.0.0.1:${target.port}/app/${benchApp.key}?protocol=7&client=js&version=8.4.0&flash=false`,
      total: o.subscribers,
      channelPrefix: 'bench-fanout',
      oneChannel: true,
      concurrencyPerWorker: o.concurrency,
      timeoutMs: 30_000,
    });
    if (conn.failed) notes.push(`${conn.failed} of ${o.subscribers} subscribers failed to subscribe: ${conn.errors.join('; ')}`);
    await sleep(500);
    const loadBefore = loadAvg();
    let serverCpu0 = procCpuMs(target.pid);
    let t0 = nowMs();
    let mach0 = machineCpu();
    const pub = await gen.publish(
      {
        baseUrl: `http://127.0.0.1:${target.port}`,
        appId: benchApp.id,
        key: benchApp.key,
        secret: benchApp.secret,
        channel: 'bench-fanout',
        rate: o.rate,
        durationMs: o.duration * 1000,
        warmupMs: o.warmup * 1000,
        payloadBytes: o.payload,
        inflight: o.inflight,
      },
      () => {
        serverCpu0 = procCpuMs(target.pid);
        mach0 = machineCpu();
        t0 = nowMs();
      },
    );
    const expected = pub.ok * conn.ok;
    const drain = await gen.drain(expected, 3000, 20_000);
    const t1 = nowMs();
    const serverCpu1 = procCpuMs(target.pid);
    const mach1 = machineCpu();
    const mem = procMem(target.pid);
    const d = await gen.report();
    const windowMs = t1 - t0;
    const pubReq = new Histogram();
    pubReq.merge(pub.reqLatency);
    const expectedMeasured = pub.okMeasured * conn.ok;
    const received = d.receivedWarm + d.receivedMeasured;
    const deliverWindow = (Math.max(d.lastRecvMs, pub.measureStartMs + 1) - pub.measureStartMs) / 1000;
    const serverCpuMs = serverCpu1 - serverCpu0;
    const pubCpuPct = (pub.cpuMs / windowMs) * 100;
    const subCpuPct = (d.subCpuMs / windowMs) * 100;
    const genCpuPct = pubCpuPct + subCpuPct;
    const achievedRate = pub.okMeasured / o.duration;
    // generator CPU is sampled at the 'report' message, a little after t1; close enough for a noise check
    const otherPct = Math.max(0, ((mach1.busyMs - mach0.busyMs - serverCpuMs - pub.cpuMs - d.subCpuMs) / windowMs) * 100);
    const stealPct = ((mach1.stealMs - mach0.stealMs) / windowMs) * 100;
    if (otherPct > 25) notes.push(`other CPU load on the machine during the run: ${otherPct.toFixed(0)}% of a core (interference?)`);
    if (stealPct > 5) notes.push(`CPU steal ${stealPct.toFixed(0)}% of a core during the run`);
    if (!target.alive()) notes.push(`server exited during the run:\n${target.output().slice(-2000)}`);
    if (pub.failed) notes.push(`${pub.failed} triggers failed: ${pub.errors.join('; ')}`);
    if (o.rate > 0 && achievedRate < o.rate * 0.95)
      notes.push(`publisher fell behind: ${achievedRate.toFixed(0)}/s of ${o.rate}/s (in-flight cap ${o.inflight}; max lag ${pub.maxLagMs.toFixed(0)} ms)`);
    if (received < expected) notes.push(`${expected - received} of ${expected} deliveries missing after ${drain.waitedMs.toFixed(0)} ms drain`);
    if (received > expected) notes.push(`${received - expected} deliveries more than expected (duplicates)`);
    if (d.closedEarly) notes.push(`${d.closedEarly} subscriber sockets closed by the server: ${JSON.stringify(d.closeCodes)}`);
    const saturated = genCpuPct > 85;
    if (saturated) notes.push(`generator used ${genCpuPct.toFixed(0)}% of its core: it may be the bottleneck`);
    if (!o.pin.enabled) notes.push(`not pinned (${o.pin.note}): server and generator share cores`);
    return {
      scenario: 'fanout',
      target: o.target,
      describe: target.describe,
      params: {
        subscribers: o.subscribers,
        rate: o.rate,
        duration: o.duration,
        warmup: o.warmup,
        payload: o.payload,
        inflight: o.inflight,
        workers: o.workers,
        redis: o.redis,
      },
      env: environment(o),
      connect: { ok: conn.ok, failed: conn.failed, perSec: conn.perSec, errors: conn.errors },
      publish: {
        requestedRate: o.rate,
        achievedRate,
        ok: pub.ok,
        okMeasured: pub.okMeasured,
        failed: pub.failed,
        errors: pub.errors,
        maxLagMs: pub.maxLagMs,
        reqP50Ms: pubReq.quantileMs(0.5),
        reqP99Ms: pubReq.quantileMs(0.99),
      },
      delivery: {
        expected,
        received,
        lost: Math.max(0, expected - received),
        expectedMeasured,
        receivedMeasured: d.receivedMeasured,
        deliveredPerSec: d.receivedMeasured / deliverWindow,
        p50Ms: d.hist.quantileMs(0.5),
        p90Ms: d.hist.quantileMs(0.9),
        p99Ms: d.hist.quantileMs(0.99),
        p999Ms: d.hist.quantileMs(0.999),
        maxMs: d.hist.max / 1000,
        meanMs: d.hist.total ? d.hist.sum / d.hist.total / 1000 : NaN,
        firstP50Ms: d.firstHist.quantileMs(0.5),
        firstP99Ms: d.firstHist.quantileMs(0.99),
        drainMs: drain.waitedMs,
        closedEarly: d.closedEarly,
        closeCodes: d.closeCodes,
      },
      server: {
        pid: target.pid,
        affinity: target.affinity,
        cpuPct: (serverCpuMs / windowMs) * 100,
        cpuUsPerDelivered: d.receivedMeasured ? (serverCpuMs * 1000) / d.receivedMeasured : NaN,
        rssEnd: mem.rss,
        hwm: mem.hwm,
      },
      generator: { cpuPct: genCpuPct, subCpuPct, pubCpuPct, saturated, workers: o.workers },
      machine: { otherPct, stealPct, loadBefore },
      ok: conn.failed === 0 && received === expected && pub.failed === 0 && target.alive(),
      notes,
    };
  } finally {
    if (gen) await gen.close();
    await target.stop();
  }
}

export function summarizeFanout(r: FanoutResult): string {
  const d = r.delivery;
  const lines = [
    `fanout → ${r.target}: ${r.describe}`,
    `  ${r.params.subscribers} subscribers (${r.connect.ok} ok, ${fmt.n(r.connect.perSec)} conn/s), ` +
      `trigger rate ${r.publish.requestedRate || 'max'}/s → achieved ${fmt.n(r.publish.achievedRate, 1)}/s for ${r.params.duration}s ` +
      `(+${r.params.warmup}s warm-up), REST p50 ${fmt.ms(r.publish.reqP50Ms)} p99 ${fmt.ms(r.publish.reqP99Ms)}`,
    `  delivered ${fmt.n(d.deliveredPerSec)} msgs/s; latency p50 ${fmt.ms(d.p50Ms)}  p90 ${fmt.ms(d.p90Ms)}  p99 ${fmt.ms(d.p99Ms)}  ` +
      `p99.9 ${fmt.ms(d.p999Ms)}  max ${fmt.ms(d.maxMs)}; first subscriber per event p50 ${fmt.ms(d.firstP50Ms)} p99 ${fmt.ms(d.firstP99Ms)}`,
    `  expected ${fmt.n(d.expected)} received ${fmt.n(d.received)} lost ${fmt.n(d.lost)}` +
      (d.closedEarly ? `  closed by server ${d.closedEarly}` : ''),
    `  server cpu ${fmt.n(r.server.cpuPct, 0)}% of core ${r.server.affinity} (${fmt.n(r.server.cpuUsPerDelivered, 2)} µs/delivered msg), ` +
      `RSS ${fmt.bytes(r.server.rssEnd)}; generator cpu ${fmt.n(r.generator.cpuPct, 0)}% ` +
      `(subscribers ${fmt.n(r.generator.subCpuPct, 0)}%, publisher ${fmt.n(r.generator.pubCpuPct, 0)}%) on cpu ${String(r.env.generatorAffinity)}`,
    `  ${String(r.env.pinning)}; other CPU on the machine ${fmt.n(r.machine.otherPct, 0)}% of a core, steal ${fmt.n(r.machine.stealPct, 1)}%, load before ${r.machine.loadBefore.toFixed(2)}`,
  ];
  for (const n of r.notes) lines.push(`  NOTE: ${n}`);
  return lines.join('\n');
}

if (isMain(import.meta.url)) {
  const o = fanoutOptions(parseArgs());
  prepareGenerator(o);
  const r = await runFanout(o);
  console.log(JSON.stringify(r));
  console.log(summarizeFanout(r));
  if (o.save) saveResult('fanout', r);
  process.exit(0);
}
