// Bench driver.
//   One run:  node --import tsx bench/run.ts --scenario fanout --target ours --subscribers 1000 --rate 200 --duration 10
//   Paired:   node --import tsx bench/run.ts --scenario fanout --paired --rounds 3 [--targets ours,bare,soketi] ...
// Paired mode runs the targets alternately (A B C A B C ...), each run on a freshly started server, then
// prints per-target medians and the ratios ours/soketi and ours/bare. Every run prints a JSON line and a
// summary; results are appended to bench/results/ (git-ignored).
import { writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs, num, str, flag } from './lib/args.js';
import { median } from './lib/hist.js';
import { benchDir, targetProblem, TARGETS, type TargetName } from './lib/targets.js';
import { prepareGenerator, environment, saveResult, fmt, parseTarget, type CommonOptions } from './lib/common.js';
import { sleep, waitQuiet } from './lib/proc.js';
import { fanoutOptions, runFanout, summarizeFanout, type FanoutResult } from './scenarios/fanout.js';
import { memoryOptions, runMemory, summarizeMemory, type MemoryResult } from './scenarios/memory.js';

type Result = FanoutResult | MemoryResult;

interface Metric {
  key: string;
  label: string;
  get: (r: Result) => number;
  format: (x: number) => string;
  better: 'lower' | 'higher';
}

const fanoutMetrics: Metric[] = [
  { key: 'delivered', label: 'delivered msgs/s', get: (r) => (r as FanoutResult).delivery.deliveredPerSec, format: (x) => fmt.n(x), better: 'higher' },
  { key: 'p50', label: 'latency p50', get: (r) => (r as FanoutResult).delivery.p50Ms, format: fmt.ms, better: 'lower' },
  { key: 'p99', label: 'latency p99', get: (r) => (r as FanoutResult).delivery.p99Ms, format: fmt.ms, better: 'lower' },
  { key: 'max', label: 'latency max', get: (r) => (r as FanoutResult).delivery.maxMs, format: fmt.ms, better: 'lower' },
  { key: 'first50', label: 'first-subscriber latency p50', get: (r) => (r as FanoutResult).delivery.firstP50Ms, format: fmt.ms, better: 'lower' },
  { key: 'first99', label: 'first-subscriber latency p99', get: (r) => (r as FanoutResult).delivery.firstP99Ms, format: fmt.ms, better: 'lower' },
  { key: 'lost', label: 'lost deliveries', get: (r) => (r as FanoutResult).delivery.lost, format: (x) => fmt.n(x), better: 'lower' },
  { key: 'srvcpu', label: 'server CPU % of its core', get: (r) => (r as FanoutResult).server.cpuPct, format: (x) => `${fmt.n(x)}%`, better: 'lower' },
  { key: 'cpumsg', label: 'server CPU µs / delivered msg', get: (r) => (r as FanoutResult).server.cpuUsPerDelivered, format: (x) => fmt.n(x, 2), better: 'lower' },
  { key: 'rest', label: 'REST trigger p50', get: (r) => (r as FanoutResult).publish.reqP50Ms, format: fmt.ms, better: 'lower' },
  { key: 'rss', label: 'server RSS at end', get: (r) => (r as FanoutResult).server.rssEnd, format: fmt.bytes, better: 'lower' },
  { key: 'gencpu', label: 'generator CPU % of its core', get: (r) => (r as FanoutResult).generator.cpuPct, format: (x) => `${fmt.n(x)}%`, better: 'lower' },
  { key: 'other', label: 'other CPU on the machine, % of a core (noise check)', get: (r) => (r as FanoutResult).machine.otherPct, format: (x) => `${fmt.n(x)}%`, better: 'lower' },
];

const memoryMetrics: Metric[] = [
  { key: 'bpc', label: 'RSS bytes / connection', get: (r) => (r as MemoryResult).bytesPerConnection, format: (x) => fmt.n(x), better: 'lower' },
  { key: 'cps', label: 'connections/s', get: (r) => (r as MemoryResult).connect.perSec, format: (x) => fmt.n(x), better: 'higher' },
  { key: 'cpuconn', label: 'server CPU µs / connection', get: (r) => (r as MemoryResult).server.cpuUsPerConnection, format: (x) => fmt.n(x), better: 'lower' },
  { key: 'rssafter', label: 'server RSS with all connections', get: (r) => (r as MemoryResult).rssAfter, format: fmt.bytes, better: 'lower' },
  { key: 'gencpu', label: 'generator CPU % while connecting', get: (r) => (r as MemoryResult).connect.genCpuPct, format: (x) => `${fmt.n(x)}%`, better: 'lower' },
  { key: 'other', label: 'other CPU while connecting, % of a core (noise check)', get: (r) => (r as MemoryResult).machine.otherPctConnect, format: (x) => `${fmt.n(x)}%`, better: 'lower' },
];

/** CPU used on the machine by others during the run (% of one core). */
function noise(r: Result): number {
  return r.scenario === 'fanout' ? r.machine.otherPct : r.machine.otherPctConnect;
}

async function runOnce(scenario: string, args: ReturnType<typeof parseArgs>, target: TargetName): Promise<Result> {
  if (scenario === 'fanout') {
    const o = fanoutOptions({ ...args, target });
    return runFanout(o);
  }
  const o = memoryOptions({ ...args, target });
  return runMemory(o);
}

function summarize(r: Result): string {
  return r.scenario === 'fanout' ? summarizeFanout(r) : summarizeMemory(r);
}

function ratio(a: number, b: number): string {
  if (!Number.isFinite(a) || !Number.isFinite(b) || b === 0) return '-';
  return `${(a / b).toFixed(2)}×`;
}

async function main(): Promise<void> {
  const args = parseArgs();
  const scenario = str(args, 'scenario', 'fanout');
  if (scenario !== 'fanout' && scenario !== 'memory') throw new Error(`unknown scenario ${scenario} (fanout|memory)`);
  const common: CommonOptions = scenario === 'fanout' ? fanoutOptions(args) : memoryOptions(args);
  prepareGenerator(common);

  if (!flag(args, 'paired')) {
    const target = parseTarget(str(args, 'target', 'ours'));
    const problem = targetProblem(target, { source: common.source });
    if (problem) throw new Error(`${target}: ${problem}`);
    const r = await runOnce(scenario, args, target);
    console.log(JSON.stringify(r));
    console.log(summarize(r));
    if (common.save) saveResult(scenario, r);
    return;
  }

  const rounds = num(args, 'rounds', 3);
  // Before each run wait (up to --wait-quiet s) for the machine to be idle; a run during which other
  // processes used more than --noisy % of a core is repeated (up to --retries times) and flagged if it stays noisy.
  const waitQuietS = num(args, 'wait-quiet', 120);
  const noisyPct = num(args, 'noisy', 25);
  const retries = num(args, 'retries', 2);
  const noisyRuns: string[] = [];
  const wanted = str(args, 'targets', TARGETS.join(',')).split(',').map(parseTarget);
  const skipped: Record<string, string> = {};
  const targets = wanted.filter((t) => {
    const p = targetProblem(t, { source: common.source });
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
          r = await runOnce(scenario, args, t);
          if (noise(r) <= noisyPct) break;
          console.log(`noisy run (other processes used ${noise(r).toFixed(0)}% of a core)${attempt < retries ? '; repeating it' : '; keeping it, flagged'}`);
          if (attempt === retries) noisyRuns.push(`${t} round ${round}: other CPU ${noise(r).toFixed(0)}%`);
        }
        if (!r) throw new Error('no result');
        results[t].push(r);
        console.log(JSON.stringify({ round, ...r }));
        console.log(summarize(r));
        if (common.save) saveResult(scenario, { round, paired: true, ...r });
      } catch (err) {
        const msg = String((err as Error).message ?? err).slice(0, 2000);
        failures[t].push(msg);
        console.log(`${t} failed: ${msg}`);
      }
      await sleep(1000);
    }
  }

  const metrics = scenario === 'fanout' ? fanoutMetrics : memoryMetrics;
  const med: Record<string, Record<string, number>> = {};
  for (const t of targets) {
    med[t] = {};
    for (const m of metrics) med[t][m.key] = median(results[t].map(m.get));
  }
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
          oursOverSoketi: med.ours && med.soketi ? med.ours[m.key] / med.soketi[m.key] : null,
          oursOverBare: med.ours && med.bare ? med.ours[m.key] / med.bare[m.key] : null,
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
  lines.push(`| metric | ${cols.join(' | ')} | ours/soketi | ours/bare |`);
  lines.push(`|---|${cols.map(() => '---:').join('|')}|---:|---:|`);
  for (const m of metrics) {
    const cells = cols.map((t) => m.format(med[t][m.key]));
    const o = med.ours?.[m.key];
    lines.push(
      `| ${m.label} (${m.better} is better) | ${cells.join(' | ')} | ${med.soketi ? ratio(o, med.soketi[m.key]) : '-'} | ${med.bare ? ratio(o, med.bare[m.key]) : '-'} |`,
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
