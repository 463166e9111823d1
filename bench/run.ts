// Bench driver: one command per scenario.
//   One run:  node --import tsx bench/run.ts fanout --target ripple --subs 1000
//   Paired:   node --import tsx bench/run.ts fanout --paired --rounds 3 [--targets ripple,soketi,bare] ...
// Scenarios: fanout, cross-node, memory, rest, client-events, presence, xhr-fanout (see bench/README.md).
// Paired mode runs the targets alternately (A B C A B C ...), each run on a freshly started server, then
// prints per-target medians and the ratios ripple/soketi and ripple/bare. Every run prints a JSON line and
// a summary; results are appended to bench/results/ (git-ignored).
import { writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs, num, str, flag, type Args } from './lib/args.js';
import { median } from './lib/hist.js';
import { benchDir, isRipple, targetProblem, type TargetName } from './lib/targets.js';
import { prepareGenerator, environment, saveResult, fmt, parseTarget, type CommonOptions } from './lib/common.js';
import { sleep, waitQuiet } from './lib/proc.js';
import { fanoutOptions, runFanout, summarizeFanout, type FanoutResult } from './scenarios/fanout.js';
import { memoryOptions, runMemory, summarizeMemory, type MemoryResult } from './scenarios/memory.js';
import { extraOptions, runExtra, summarizeExtra, type ExtraResult, type ExtraScenario } from './scenarios/extra.js';
import { runXhrFanoutPaired } from './scenarios/xhr-fanout.js';

type Result = FanoutResult | MemoryResult | ExtraResult;

interface Metric {
  key: string;
  label: string;
  get: (r: Result) => number;
  format: (x: number) => string;
  better: 'lower' | 'higher';
}

const F = (r: Result) => r as FanoutResult;
const M = (r: Result) => r as MemoryResult;
const X = (r: Result) => r as ExtraResult;
const pct = (x: number) => `${fmt.n(x)}%`;

const fanoutMetrics: Metric[] = [
  { key: 'maxmsgs', label: 'max delivered msgs/s held (p99 < 100 ms, no loss)', get: (r) => F(r).ramp?.maxHeldMsgsPerSec ?? NaN, format: (x) => fmt.n(x), better: 'higher' },
  {
    key: 'rampcap',
    label: 'server-bound capacity estimate: msgs/s at the last held step ÷ server CPU share then',
    get: (r) => {
      const s = F(r).ramp?.steps.filter((x) => !x.fail).at(-1);
      return s ? s.deliveredPerSec / (s.serverCpuPct / 100) : NaN;
    },
    format: (x) => fmt.n(x),
    better: 'higher',
  },
  { key: 'maxrate', label: 'max triggers/s held', get: (r) => F(r).ramp?.maxHeldRate ?? NaN, format: (x) => fmt.n(x), better: 'higher' },
  { key: 'delivered', label: 'fixed phase: delivered msgs/s', get: (r) => F(r).fixed.deliveredPerSec, format: (x) => fmt.n(x), better: 'higher' },
  { key: 'p50', label: 'fixed phase: latency p50', get: (r) => F(r).fixed.p50Ms, format: fmt.ms, better: 'lower' },
  { key: 'p99', label: 'fixed phase: latency p99', get: (r) => F(r).fixed.p99Ms, format: fmt.ms, better: 'lower' },
  { key: 'max', label: 'fixed phase: latency max', get: (r) => F(r).fixed.maxMs, format: fmt.ms, better: 'lower' },
  { key: 'lost', label: 'fixed phase: lost deliveries', get: (r) => F(r).fixed.lost, format: (x) => fmt.n(x), better: 'lower' },
  { key: 'cpumsg', label: 'fixed phase: server CPU µs / delivered msg', get: (r) => F(r).fixed.serverCpuUsPerDelivered, format: (x) => fmt.n(x, 2), better: 'lower' },
  { key: 'sysmsg', label: 'fixed phase: server syscalls / delivered msg (perf tracepoints; load-independent)', get: (r) => F(r).fixed.syscallsPerDelivered ?? NaN, format: (x) => (Number.isFinite(x) ? fmt.n(x, 3) : '-'), better: 'lower' },
  { key: 'sendmsg', label: 'fixed phase: server sendto+writev calls / delivered msg', get: (r) => F(r).fixed.sendsPerDelivered ?? NaN, format: (x) => (Number.isFinite(x) ? fmt.n(x, 3) : '-'), better: 'lower' },
  { key: 'rediscpu', label: 'fixed phase: redis-server CPU µs / trigger (cross-node)', get: (r) => F(r).fixed.redisCpuUsPerTrigger ?? NaN, format: (x) => (Number.isFinite(x) ? fmt.n(x, 1) : '-'), better: 'lower' },
  { key: 'rampgen', label: 'generator CPU % at the last held ramp step', get: (r) => F(r).ramp?.steps.filter((s) => !s.fail).at(-1)?.genCpuPct ?? NaN, format: pct, better: 'lower' },
  { key: 'rampsrv', label: 'server CPU % at the last held ramp step', get: (r) => F(r).ramp?.steps.filter((s) => !s.fail).at(-1)?.serverCpuPct ?? NaN, format: pct, better: 'lower' },
  { key: 'srvcpu', label: 'fixed phase: server CPU % of a core', get: (r) => F(r).fixed.serverCpuPct, format: pct, better: 'lower' },
  { key: 'rest', label: 'fixed phase: REST trigger p50', get: (r) => F(r).fixed.reqP50Ms, format: fmt.ms, better: 'lower' },
  { key: 'rss', label: 'server RSS at end', get: (r) => F(r).server.rssEnd, format: fmt.bytes, better: 'lower' },
  { key: 'gencpu', label: 'fixed phase: generator CPU % of its core', get: (r) => F(r).fixed.genCpuPct, format: pct, better: 'lower' },
  { key: 'other', label: 'fixed phase: other CPU, % of a core (noise check)', get: (r) => F(r).fixed.otherPct, format: pct, better: 'lower' },
];

const memoryMetrics: Metric[] = [
  { key: 'bpc', label: 'RSS bytes / idle subscribed connection', get: (r) => M(r).bytesPerConnection, format: (x) => fmt.n(x), better: 'lower' },
  { key: 'heapc', label: 'V8 heap bytes / idle subscribed connection (used, after full GCs)', get: (r) => M(r).heapBytesPerConnection ?? NaN, format: (x) => (Number.isFinite(x) ? fmt.n(x) : '-'), better: 'lower' },
  { key: 'slope', label: 'RSS bytes / connection, slope over the steps (without what the process had free before)', get: (r) => M(r).slope?.rss ?? NaN, format: (x) => (Number.isFinite(x) ? fmt.n(x) : '-'), better: 'lower' },
  { key: 'cps', label: 'connections/s', get: (r) => M(r).connect.perSec, format: (x) => fmt.n(x), better: 'higher' },
  { key: 'cpuconn', label: 'server CPU µs / connection', get: (r) => M(r).server.cpuUsPerConnection, format: (x) => fmt.n(x), better: 'lower' },
  { key: 'rssafter', label: 'server RSS with all connections', get: (r) => M(r).rssAfter, format: fmt.bytes, better: 'lower' },
  { key: 'gencpu', label: 'generator CPU % while connecting', get: (r) => M(r).connect.genCpuPct, format: pct, better: 'lower' },
  { key: 'other', label: 'other CPU while connecting, % of a core (noise check)', get: (r) => M(r).machine.otherPctConnect, format: pct, better: 'lower' },
];

function extraMetrics(tput: string, lat: string): Metric[] {
  return [
    { key: 'tput', label: tput, get: (r) => X(r).throughput, format: (x) => fmt.n(x), better: 'higher' },
    { key: 'p50', label: `${lat} p50`, get: (r) => X(r).p50Ms, format: fmt.ms, better: 'lower' },
    { key: 'p99', label: `${lat} p99`, get: (r) => X(r).p99Ms, format: fmt.ms, better: 'lower' },
    { key: 'lost', label: 'lost deliveries', get: (r) => X(r).lost, format: (x) => fmt.n(x), better: 'lower' },
    { key: 'errors', label: 'errors', get: (r) => X(r).errors, format: (x) => fmt.n(x), better: 'lower' },
    { key: 'cpuop', label: 'server CPU µs / op', get: (r) => X(r).serverCpuUsPerOp, format: (x) => fmt.n(x, 1), better: 'lower' },
    { key: 'cap', label: 'server-bound capacity, ops/s at 100% of its core (1e6 / µs per op)', get: (r) => 1e6 / X(r).serverCpuUsPerOp, format: (x) => fmt.n(x), better: 'higher' },
    { key: 'srvcpu', label: 'server CPU % of a core', get: (r) => X(r).serverCpuPct, format: pct, better: 'lower' },
    { key: 'gencpu', label: 'generator CPU % of its core', get: (r) => X(r).genCpuPct, format: pct, better: 'lower' },
    { key: 'other', label: 'other CPU, % of a core (noise check)', get: (r) => X(r).otherPct, format: pct, better: 'lower' },
  ];
}

interface ScenarioDef {
  metrics: Metric[];
  targets: TargetName[];
  options(args: Args): CommonOptions;
  run(args: Args, target: TargetName): Promise<Result>;
  summarize(r: Result): string;
  noise(r: Result): number;
}

const extra = (name: ExtraScenario, tput: string, lat: string, targets: TargetName[]): ScenarioDef => ({
  metrics: extraMetrics(tput, lat),
  targets,
  options: (a) => extraOptions(name, a),
  run: (a, t) => runExtra(extraOptions(name, { ...a, target: t })),
  summarize: (r) => summarizeExtra(X(r)),
  noise: (r) => X(r).otherPct,
});

const SCENARIOS: Record<string, ScenarioDef> = {
  fanout: {
    metrics: fanoutMetrics,
    targets: ['ripple', 'soketi', 'bare'],
    options: (a) => fanoutOptions(a),
    run: (a, t) => runFanout(fanoutOptions({ ...a, target: t })),
    summarize: (r) => summarizeFanout(F(r)),
    noise: (r) => F(r).fixed.otherPct,
  },
  'cross-node': {
    metrics: fanoutMetrics,
    targets: ['ripple', 'soketi'],
    options: (a) => fanoutOptions(a, true),
    run: (a, t) => runFanout(fanoutOptions({ ...a, target: t }, true)),
    summarize: (r) => summarizeFanout(F(r)),
    noise: (r) => F(r).fixed.otherPct,
  },
  memory: {
    metrics: memoryMetrics,
    targets: ['ripple', 'soketi', 'bare'],
    options: (a) => memoryOptions(a),
    run: (a, t) => runMemory(memoryOptions({ ...a, target: t })),
    summarize: (r) => summarizeMemory(M(r)),
    noise: (r) => M(r).machine.otherPctConnect,
  },
  rest: extra('rest', 'REST triggers/s (closed loop)', 'REST round trip', ['ripple', 'soketi', 'bare']),
  'client-events': extra('client-events', 'client events delivered/s', 'client event latency', ['ripple', 'soketi']),
  presence: extra('presence', 'presence joins/s (closed loop churn)', 'join latency', ['ripple', 'soketi']),
};

function ratio(a: number, b: number): string {
  if (!Number.isFinite(a) || !Number.isFinite(b) || b === 0) return '-';
  return `${(a / b).toFixed(2)}×`;
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const positional = argv.length && !argv[0].startsWith('--') ? argv.shift()! : undefined;
  const args = parseArgs(argv);
  const scenario = positional ?? str(args, 'scenario', 'fanout');
  if (scenario === 'xhr-fanout') {
    // Always paired: ripple's fan-out over WebSockets and over xhr_streaming, alternately.
    prepareGenerator(fanoutOptions(args));
    return runXhrFanoutPaired(args);
  }
  const def = SCENARIOS[scenario];
  if (!def) throw new Error(`unknown scenario ${scenario} (${[...Object.keys(SCENARIOS), 'xhr-fanout'].join('|')})`);
  const common: CommonOptions = def.options(args);
  prepareGenerator(common);

  if (!flag(args, 'paired')) {
    const target = parseTarget(str(args, 'target', 'ripple'));
    const problem = targetProblem(target, { rippleRev: common.rippleRev });
    if (problem) throw new Error(`${target}: ${problem}`);
    const r = await def.run(args, target);
    console.log(JSON.stringify(r));
    console.log(def.summarize(r));
    if (common.save) saveResult(scenario, r);
    return;
  }

  const rounds = num(args, 'rounds', 3);
  // Before each run wait (up to --wait-quiet s) for the machine to be idle; a run during which other
  // processes used more than --noisy % of a core is repeated (up to --retries times) and flagged if it stays noisy.
  const waitQuietS = num(args, 'wait-quiet', 20);
  const noisyPct = num(args, 'noisy', 40);
  const retries = num(args, 'retries', 1);
  const noisyRuns: string[] = [];
  const wanted = str(args, 'targets', def.targets.join(',')).split(',').map(parseTarget);
  const skipped: Record<string, string> = {};
  const targets = wanted.filter((t) => {
    const p = targetProblem(t, { rippleRev: common.rippleRev });
    if (p) skipped[t] = p;
    return !p;
  });
  for (const [t, why] of Object.entries(skipped)) console.log(`skipping ${t}: ${why}`);
  const results: Record<string, Result[]> = Object.fromEntries(targets.map((t) => [t, []]));
  const failures: Record<string, string[]> = Object.fromEntries(targets.map((t) => [t, []]));
  for (let round = 1; round <= rounds; round++) {
    for (const t of targets) {
      console.log(`--- round ${round}/${rounds}: ${scenario} → ${t}`);
      try {
        let r: Result | null = null;
        for (let attempt = 0; attempt <= retries; attempt++) {
          if (waitQuietS > 0) {
            const q = await waitQuiet(waitQuietS * 1000);
            if (!q.quiet) console.log(`machine still busy (${q.busyPct.toFixed(0)}% of a core) after ${(q.waitedMs / 1000).toFixed(0)} s; running anyway`);
          }
          r = await def.run(args, t);
          if (def.noise(r) <= noisyPct) break;
          console.log(`noisy run (other processes used ${def.noise(r).toFixed(0)}% of a core)${attempt < retries ? '; repeating it' : '; keeping it, flagged'}`);
          if (attempt === retries) noisyRuns.push(`${t} round ${round}: other CPU ${def.noise(r).toFixed(0)}%`);
        }
        if (!r) throw new Error('no result');
        results[t].push(r);
        console.log(JSON.stringify({ round, ...r }));
        console.log(def.summarize(r));
        if (common.save) saveResult(scenario, { round, paired: true, ...r });
      } catch (err) {
        const msg = String((err as Error).message ?? err).slice(0, 2000);
        failures[t].push(msg);
        console.log(`${t} failed: ${msg}`);
      }
      await sleep(1000);
    }
  }

  const metrics = def.metrics;
  const med: Record<string, Record<string, number>> = {};
  for (const t of targets) {
    med[t] = {};
    for (const m of metrics) med[t][m.key] = median(results[t].map(m.get));
  }
  // Variants of ripple (`ripple@<rev>` before/after, `ripple+recovery` on/off) are compared with ripple.
  const variants = targets.filter((t) => isRipple(t) && t !== 'ripple');
  const first = Object.values(results).flat()[0];
  const params = first ? first.params : {};
  const summary = {
    paired: true,
    scenario,
    rounds,
    order: targets.join(' '),
    params,
    env: environment(common),
    runs: Object.fromEntries(targets.map((t) => [t, results[t].length])),
    failures,
    skipped,
    noisyRuns,
    medians: med,
    describe: Object.fromEntries(targets.map((t) => [t, results[t][0]?.describe ?? '-'])),
    notes: Object.fromEntries(targets.map((t) => [t, [...new Set(results[t].flatMap((r) => r.notes))]])),
    ratios: Object.fromEntries(
      metrics.map((m) => [
        m.key,
        {
          rippleOverSoketi: med.ripple && med.soketi ? med.ripple[m.key] / med.soketi[m.key] : null,
          variantsOverRipple: Object.fromEntries(variants.map((v) => [v, med.ripple ? med[v][m.key] / med.ripple[m.key] : null])),
          rippleOverBare: med.ripple && med.bare ? med.ripple[m.key] / med.bare[m.key] : null,
        },
      ]),
    ),
  };
  console.log(JSON.stringify(summary));

  // Markdown table (pasted into bench/RESULTS.md)
  const cols = targets;
  const lines: string[] = [];
  lines.push(`${scenario} — medians of ${rounds} paired round(s), order ${targets.join(' → ')} each round; params ${JSON.stringify(params)}`);
  lines.push('');
  const variantCols = variants.map((v) => ` ${v}/ripple |`).join('');
  lines.push(`| metric | ${cols.join(' | ')} | ripple/soketi | ripple/bare |${variantCols}`);
  lines.push(`|---|${cols.map(() => '---:').join('|')}|---:|---:|${variants.map(() => '---:|').join('')}`);
  for (const m of metrics) {
    const cells = cols.map((t) => m.format(med[t][m.key]));
    const o = med.ripple?.[m.key];
    const base = variants.map((v) => ` ${med.ripple ? ratio(med[v][m.key], o) : '-'} |`).join('');
    lines.push(
      `| ${m.label} (${m.better} is better) | ${cells.join(' | ')} | ${med.soketi ? ratio(o, med.soketi[m.key]) : '-'} | ${med.bare ? ratio(o, med.bare[m.key]) : '-'} |${base}`,
    );
  }
  for (const t of cols) {
    const per = results[t].map((r) => metrics.map((m) => `${m.key}=${m.format(m.get(r))}`).join(', '));
    lines.push('');
    lines.push(`${t} per round: ${per.map((p, i) => `(${i + 1}) ${p}`).join('; ')}`);
    if (failures[t].length) lines.push(`${t} FAILED ${failures[t].length}×: ${failures[t].join(' | ')}`);
    const notes = summary.notes[t];
    if (notes.length) lines.push(`${t} notes: ${notes.join(' | ')}`);
  }
  for (const [t, why] of Object.entries(skipped)) lines.push(`${t} skipped: ${why}`);
  if (noisyRuns.length) lines.push(`\nruns kept although other processes were busy: ${noisyRuns.join('; ')}`);
  const md = lines.join('\n');
  console.log('\n' + md);
  if (common.save) {
    const dir = join(benchDir, 'results');
    mkdirSync(dir, { recursive: true });
    const stamp = new Date().toISOString().replace(/[:.]/g, '-');
    writeFileSync(join(dir, `paired-${scenario}-${stamp}.json`), JSON.stringify({ summary, results }, null, 2));
    writeFileSync(join(dir, `paired-${scenario}-${stamp}.md`), md + '\n');
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  },
);
