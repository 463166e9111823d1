// Scenarios `rest`, `client-events` and `presence` (fanout/cross-node: fanout.ts, memory: memory.ts).
//   rest          – closed-loop signed REST triggers (POST /apps/<id>/events, --inflight keep-alive
//                   connections) to a channel with --subs subscribers: triggers/s, REST latency, server
//                   CPU per trigger, and that every event reached every subscriber.
//   client-events – --pairs pairs of sockets, each pair on its own private channel (signed auth); every
//                   socket sends --rate client events/s, its partner receives them: delivered/s, latency
//                   (send → partner receives), losses, server CPU per event.
//   presence      – --channels presence channels with --members members each (signed channel_data);
//                   every --every-th member churns in a closed loop: subscribe → subscription_succeeded →
//                   unsubscribe → subscribe ...; the others stay as observers and receive member_added /
//                   member_removed. Reports joins/s, join latency (subscribe → subscription_succeeded),
//                   member events received/s, server CPU per join.
import { parseArgs, num, str } from '../lib/args.js';
import { LoadGen } from '../lib/loadgen.js';
import { Histogram } from '../lib/hist.js';
import { nowMs } from '../lib/clock.js';
import { procCpuMs, procMem, sleep, machineCpu } from '../lib/proc.js';
import { startTarget, callgrindCollect, benchApp, type TargetName, type Target } from '../lib/targets.js';
import { commonOptions, prepareGenerator, environment, saveResult, parseTarget, fmt, isMain, type CommonOptions } from '../lib/common.js';

export type ExtraScenario = 'rest' | 'client-events' | 'presence';

export interface ExtraOptions extends CommonOptions {
  scenario: ExtraScenario;
  target: TargetName;
  subs: number;
  inflight: number;
  pairs: number;
  rate: number;
  channels: number;
  members: number;
  every: number;
  duration: number;
  warmup: number;
  payload: number;
  concurrency: number;
}

export function extraOptions(scenario: ExtraScenario, args: ReturnType<typeof parseArgs>): ExtraOptions {
  return {
    ...commonOptions(args),
    scenario,
    target: parseTarget(str(args, 'target', 'ripple')),
    subs: num(args, 'subs', 1),
    inflight: num(args, 'inflight', 32),
    pairs: num(args, 'pairs', 500),
    rate: num(args, 'rate', 20),
    channels: num(args, 'channels', 50),
    members: num(args, 'members', 20),
    every: num(args, 'every', 2),
    duration: num(args, 'duration', 8),
    warmup: num(args, 'warmup', 1),
    payload: num(args, 'payload', 64),
    concurrency: num(args, 'concurrency', 50),
  };
}

export interface ExtraResult {
  scenario: ExtraScenario;
  target: TargetName;
  describe: string;
  params: Record<string, unknown>;
  env: Record<string, unknown>;
  connect: { ok: number; failed: number; perSec: number; errors: string[] };
  /** the scenario's throughput: triggers/s (rest), delivered client events/s, joins/s (presence) */
  throughput: number;
  throughputUnit: string;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  lost: number;
  errors: number;
  /** presence: member_added/removed frames received per second */
  memberEventsPerSec: number;
  serverCpuPct: number;
  serverCpuUsPerOp: number;
  genCpuPct: number;
  otherPct: number;
  rssEnd: number;
  ok: boolean;
  notes: string[];
}

export async function runExtra(o: ExtraOptions): Promise<ExtraResult> {
  const target: Target = await startTarget(o.target, { serverCpus: o.pin.serverCpus, rippleRev: o.rippleRev, redis: o.redis, cpuProfDir: o.cpuProfDir, callgrindDir: o.callgrindDir, rippleWorkers: o.rippleWorkers });
  const pids = [target.pid, ...target.extraPids];
  const cpu = () => pids.reduce((a, p) => a + procCpuMs(p), 0);
  const url = `ws://127.0.0.1:${target.port}/app/${benchApp.key}?protocol=7&client=js&version=8.4.0&flash=false`;
  const common = { url, key: benchApp.key, secret: benchApp.secret, concurrencyPerWorker: o.concurrency, timeoutMs: 30_000 };
  let gen: LoadGen | null = null;
  const notes: string[] = [];
  try {
    gen = await LoadGen.start(o.workers, o.scenario === 'rest');
    const conn =
      o.scenario === 'rest'
        ? await gen.connect({ ...common, total: o.subs, channelPrefix: 'bench-rest', layout: 'one' })
        : o.scenario === 'client-events'
          ? await gen.connect({ ...common, total: o.pairs * 2, channelPrefix: 'private-pair-', layout: 'pairs' })
          : await gen.connect({ ...common, total: o.channels * o.members, channelPrefix: 'presence-bench-', layout: 'groups', groups: o.channels });
    if (conn.failed) notes.push(`${conn.failed} connections failed: ${conn.errors.join('; ')}`);
    await sleep(500);
    let cpu0 = cpu();
    let mach0 = machineCpu();
    let t0 = nowMs();
    const onMeasuring = () => {
      // callgrind (rest): instructions counted from the measured phase on, so V8's warm-up (compiling the
      // hot path) is not divided among the measured triggers
      if (o.callgrindDir && o.scenario === 'rest') callgrindCollect(target.pid, true);
      cpu0 = cpu();
      mach0 = machineCpu();
      t0 = nowMs();
    };
    let throughput = 0;
    let unit = '';
    let ops = 0;
    let lost = 0;
    let errors = 0;
    let lat = new Histogram();
    let pubCpuMs = 0;
    let memberEventsPerSec = NaN;
    if (o.scenario === 'rest') {
      const pub = await gen.publish(
        {
          baseUrl: `http://127.0.0.1:${target.port}`,
          appId: benchApp.id,
          key: benchApp.key,
          secret: benchApp.secret,
          channel: 'bench-rest',
          rate: 0,
          durationMs: o.duration * 1000,
          warmupMs: o.warmup * 1000,
          payloadBytes: o.payload,
          inflight: o.inflight,
        },
        onMeasuring,
      );
      const drain = await gen.drain(pub.ok * conn.ok, 2000, 20_000);
      if (o.callgrindDir) callgrindCollect(target.pid, false);
      lost = Math.max(0, pub.ok * conn.ok - drain.received);
      errors = pub.failed;
      if (pub.failed) notes.push(`${pub.failed} triggers failed: ${pub.errors.join('; ')}`);
      ops = pub.okMeasured;
      throughput = pub.okMeasured / o.duration;
      unit = 'triggers/s';
      lat.merge(pub.reqLatency);
      pubCpuMs = pub.cpuMs;
    } else if (o.scenario === 'client-events') {
      const sent = await gen.clientEvents({ ratePerSocket: o.rate, durationMs: o.duration * 1000, warmupMs: o.warmup * 1000, payloadBytes: o.payload }, onMeasuring);
      const expected = sent.sentWarm + sent.sentMeasured;
      const drain = await gen.drain(expected, 2000, 20_000);
      lost = Math.max(0, expected - drain.received);
      ops = sent.sentMeasured;
      unit = 'client events/s delivered';
    } else {
      onMeasuring();
      gen.churn(o.every);
      await sleep(o.warmup * 1000);
      gen.mark();
      onMeasuring();
      await sleep(o.duration * 1000);
      gen.churnStop();
      unit = 'joins/s';
    }
    const t1 = nowMs();
    const cpuMs = cpu() - cpu0;
    const mach1 = machineCpu();
    const d = await gen.report();
    const windowMs = o.scenario === 'presence' ? t1 - t0 : t1 - t0;
    if (o.scenario === 'client-events') {
      throughput = d.receivedMeasured / ((Math.max(d.lastRecvMs, t0 + 1) - t0) / 1000);
      lat = d.hist;
    } else if (o.scenario === 'presence') {
      ops = d.joins;
      throughput = d.joins / o.duration;
      errors = d.joinErrors;
      lat = d.hist;
      memberEventsPerSec = d.memberEvents / o.duration;
      if (d.joinErrors) notes.push(`${d.joinErrors} subscription errors while churning`);
    }
    const genCpuMs = d.subCpuMs + pubCpuMs;
    const genCpuPct = (genCpuMs / windowMs) * 100;
    const otherPct = Math.max(0, ((mach1.busyMs - mach0.busyMs - cpuMs - genCpuMs) / windowMs) * 100);
    if (lost) notes.push(`${lost} deliveries missing after the drain`);
    if (d.closedEarly) notes.push(`${d.closedEarly} sockets closed by the server: ${JSON.stringify(d.closeCodes)}`);
    if (genCpuPct > 85) notes.push(`generator used ${genCpuPct.toFixed(0)}% of its core: it may be the bottleneck`);
    if (otherPct > 25) notes.push(`other CPU load on the machine: ${otherPct.toFixed(0)}% of a core (interference?)`);
    if (!target.alive()) notes.push(`server exited during the run:\n${target.output().slice(-2000)}`);
    const params: Record<string, unknown> = { duration: o.duration, warmup: o.warmup, workers: o.workers, redis: o.redis };
    if (o.scenario === 'rest') Object.assign(params, { subs: o.subs, inflight: o.inflight, payload: o.payload });
    if (o.scenario === 'client-events') Object.assign(params, { pairs: o.pairs, ratePerSocket: o.rate, payload: o.payload });
    if (o.scenario === 'presence') Object.assign(params, { channels: o.channels, members: o.members, churnEvery: o.every });
    return {
      scenario: o.scenario,
      target: o.target,
      describe: target.describe,
      params,
      env: environment(o),
      connect: { ok: conn.ok, failed: conn.failed, perSec: conn.perSec, errors: conn.errors },
      throughput,
      throughputUnit: unit,
      p50Ms: lat.quantileMs(0.5),
      p99Ms: lat.quantileMs(0.99),
      maxMs: lat.max / 1000,
      lost,
      errors,
      memberEventsPerSec,
      serverCpuPct: (cpuMs / windowMs) * 100,
      serverCpuUsPerOp: ops ? (cpuMs * 1000) / ops : NaN,
      genCpuPct,
      otherPct,
      rssEnd: procMem(target.pid).rss,
      ok: conn.failed === 0 && lost === 0 && errors === 0 && target.alive(),
      notes,
    };
  } finally {
    if (gen) await gen.close();
    await target.stop();
  }
}

export function summarizeExtra(r: ExtraResult): string {
  const what = r.scenario === 'rest' ? 'REST request round trip' : r.scenario === 'client-events' ? 'delivery latency' : 'join latency';
  const lines = [
    `${r.scenario} → ${r.target}: ${r.describe}`,
    `  ${JSON.stringify(r.params)}; ${r.connect.ok} sockets (${fmt.n(r.connect.perSec)} conn/s)`,
    `  ${fmt.n(r.throughput)} ${r.throughputUnit}; ${what} p50 ${fmt.ms(r.p50Ms)} p99 ${fmt.ms(r.p99Ms)} max ${fmt.ms(r.maxMs)}; lost ${r.lost}, errors ${r.errors}` +
      (Number.isFinite(r.memberEventsPerSec) ? `; member events received ${fmt.n(r.memberEventsPerSec)}/s` : ''),
    `  server cpu ${fmt.n(r.serverCpuPct, 0)}% (${fmt.n(r.serverCpuUsPerOp, 1)} µs per op), RSS ${fmt.bytes(r.rssEnd)}; generator cpu ${fmt.n(r.genCpuPct, 0)}%; ` +
      `${String(r.env.pinning)}; other CPU ${fmt.n(r.otherPct, 0)}%`,
  ];
  for (const n of r.notes) lines.push(`  NOTE: ${n}`);
  return lines.join('\n');
}

if (isMain(import.meta.url)) {
  const args = parseArgs();
  const o = extraOptions(str(args, 'scenario', 'rest') as ExtraScenario, args);
  prepareGenerator(o);
  const r = await runExtra(o);
  console.log(JSON.stringify(r));
  console.log(summarizeExtra(r));
  if (o.save) saveResult(r.scenario, r);
  process.exit(0);
}
