// Scenario `xhr-fanout`: the fan-out of scenarios/fanout.ts on ripple, with the subscribers on
// WebSockets and on pusher-js-style HTTP streaming (xhr_streaming), paired in one command: each round
// runs both (ws, then xhr), each on a freshly started server after waiting for the machine to be quiet,
// and the summary gives per-transport medians and the ratio xhr/ws. Every fanout option applies
// (--subs, --rate, --duration, --no-ramp, ...); --rounds R (3), --wait-quiet S (20), --noisy P (40) and
// --retries K (1) as in run.ts's paired mode.
import { num, str, type Args } from '../lib/args.js';
import { median } from '../lib/hist.js';
import { fmt, saveResult } from '../lib/common.js';
import { sleep, waitQuiet } from '../lib/proc.js';
import { fanoutOptions, runFanout, summarizeFanout, type FanoutResult } from './fanout.js';

const TRANSPORTS = ['ws', 'xhr'] as const;
type Transport = (typeof TRANSPORTS)[number];

interface Metric {
  label: string;
  get: (r: FanoutResult) => number;
  format: (x: number) => string;
  better: 'lower' | 'higher';
}

const pct = (x: number) => `${fmt.n(x)}%`;
const heldStep = (r: FanoutResult) => r.ramp?.steps.filter((s) => !s.fail).at(-1);

const METRICS: Metric[] = [
  { label: 'fixed phase: delivered msgs/s', get: (r) => r.fixed.deliveredPerSec, format: (x) => fmt.n(x), better: 'higher' },
  { label: 'fixed phase: latency p50', get: (r) => r.fixed.p50Ms, format: fmt.ms, better: 'lower' },
  { label: 'fixed phase: latency p99', get: (r) => r.fixed.p99Ms, format: fmt.ms, better: 'lower' },
  { label: 'fixed phase: latency max', get: (r) => r.fixed.maxMs, format: fmt.ms, better: 'lower' },
  { label: 'fixed phase: lost deliveries', get: (r) => r.fixed.lost, format: (x) => fmt.n(x), better: 'lower' },
  { label: 'fixed phase: server CPU µs / delivered msg', get: (r) => r.fixed.serverCpuUsPerDelivered, format: (x) => fmt.n(x, 2), better: 'lower' },
  { label: 'fixed phase: server CPU % of a core', get: (r) => r.fixed.serverCpuPct, format: pct, better: 'lower' },
  { label: 'max delivered msgs/s held (p99 < 100 ms, no loss)', get: (r) => r.ramp?.maxHeldMsgsPerSec ?? NaN, format: (x) => fmt.n(x), better: 'higher' },
  { label: 'p99 at the last held ramp step', get: (r) => heldStep(r)?.p99Ms ?? NaN, format: fmt.ms, better: 'lower' },
  {
    label: 'server-bound capacity estimate: msgs/s at the last held step ÷ server CPU share then',
    get: (r) => {
      const s = heldStep(r);
      return s ? s.deliveredPerSec / (s.serverCpuPct / 100) : NaN;
    },
    format: (x) => fmt.n(x),
    better: 'higher',
  },
  { label: 'generator CPU % at the last held ramp step', get: (r) => heldStep(r)?.genCpuPct ?? NaN, format: pct, better: 'lower' },
  { label: 'server RSS at end', get: (r) => r.server.rssEnd, format: fmt.bytes, better: 'lower' },
  { label: 'fixed phase: other CPU, % of a core (noise check)', get: (r) => r.fixed.otherPct, format: pct, better: 'lower' },
];

function ratio(a: number, b: number): string {
  if (!Number.isFinite(a) || !Number.isFinite(b) || b === 0) return '-';
  return `${(a / b).toFixed(2)}×`;
}

export async function runXhrFanoutPaired(args: Args): Promise<void> {
  const rounds = num(args, 'rounds', 3);
  const waitQuietS = num(args, 'wait-quiet', 20);
  const noisyPct = num(args, 'noisy', 40);
  const retries = num(args, 'retries', 1);
  const target = str(args, 'target', 'ripple');
  const results: Record<Transport, FanoutResult[]> = { ws: [], xhr: [] };
  const failures: Record<Transport, string[]> = { ws: [], xhr: [] };
  const noisyRuns: string[] = [];
  for (let round = 1; round <= rounds; round++) {
    for (const transport of TRANSPORTS) {
      console.log(`--- round ${round}/${rounds}: fanout → ${target} over ${transport}`);
      const o = fanoutOptions({ ...args, target, transport });
      try {
        let r: FanoutResult | null = null;
        for (let attempt = 0; attempt <= retries; attempt++) {
          if (waitQuietS > 0) {
            const q = await waitQuiet(waitQuietS * 1000);
            if (!q.quiet) console.log(`machine still busy (${q.busyPct.toFixed(0)}% of a core) after ${(q.waitedMs / 1000).toFixed(0)} s; running anyway`);
          }
          r = await runFanout(o);
          if (r.fixed.otherPct <= noisyPct) break;
          console.log(`noisy run (other processes used ${r.fixed.otherPct.toFixed(0)}% of a core)${attempt < retries ? '; repeating it' : '; keeping it, flagged'}`);
          if (attempt === retries) noisyRuns.push(`${transport} round ${round}: other CPU ${r.fixed.otherPct.toFixed(0)}%`);
        }
        if (!r) throw new Error('no result');
        results[transport].push(r);
        console.log(JSON.stringify({ round, ...r }));
        console.log(summarizeFanout(r));
        if (o.save) saveResult('xhr-fanout', { round, paired: true, ...r });
      } catch (err) {
        const msg = String((err as Error).message ?? err).slice(0, 2000);
        failures[transport].push(msg);
        console.log(`${transport} failed: ${msg}`);
      }
      await sleep(1000);
    }
  }

  const med = (t: Transport, m: Metric) => median(results[t].map(m.get));
  const first = results.ws[0] ?? results.xhr[0];
  const lines: string[] = [];
  lines.push(`xhr-fanout — medians of ${rounds} paired round(s), ws → xhr each round; params ${JSON.stringify(first ? { ...first.params, transport: undefined } : {})}`);
  lines.push('');
  lines.push('| metric | WebSocket | xhr_streaming | xhr/ws |');
  lines.push('|---|---:|---:|---:|');
  for (const m of METRICS) {
    lines.push(`| ${m.label} (${m.better} is better) | ${m.format(med('ws', m))} | ${m.format(med('xhr', m))} | ${ratio(med('xhr', m), med('ws', m))} |`);
  }
  for (const t of TRANSPORTS) {
    lines.push('');
    lines.push(`${t} per round: ${results[t].map((r, i) => `(${i + 1}) ${fmt.n(r.fixed.deliveredPerSec)} msgs/s, p99 ${fmt.ms(r.fixed.p99Ms)}, ${fmt.n(r.fixed.serverCpuUsPerDelivered, 2)} µs/msg, held ${fmt.n(r.ramp?.maxHeldMsgsPerSec ?? NaN)} msgs/s`).join('; ')}`);
    if (failures[t].length) lines.push(`${t} FAILED ${failures[t].length}×: ${failures[t].join(' | ')}`);
    const notes = [...new Set(results[t].flatMap((r) => r.notes))];
    if (notes.length) lines.push(`${t} notes: ${notes.join(' | ')}`);
  }
  if (noisyRuns.length) lines.push(`\nruns kept although other processes were busy: ${noisyRuns.join('; ')}`);
  const md = lines.join('\n');
  console.log(JSON.stringify({ paired: true, scenario: 'xhr-fanout', rounds, failures, noisyRuns, medians: Object.fromEntries(TRANSPORTS.map((t) => [t, Object.fromEntries(METRICS.map((m) => [m.label, med(t, m)]))])) }));
  console.log('\n' + md);
  if (!args['no-save']) saveResult('xhr-fanout-paired', { markdown: md, results });
}
