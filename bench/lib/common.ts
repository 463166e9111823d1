// Options shared by the scenarios and the driver, plus output helpers.
import { mkdirSync, appendFileSync } from 'node:fs';
import { join } from 'node:path';
import os from 'node:os';
import { type Args, num, str, flag } from './args.js';
import { pinPlan, pinSelf, procAffinity, type PinPlan } from './proc.js';
import { benchDir, gitHead, rippleCommit, TARGETS, type TargetName } from './targets.js';
import { selfTest } from './sign.js';

export interface CommonOptions {
  pin: PinPlan;
  workers: number;
  /** ripple: git revision to snapshot (default HEAD), 'worktree' or 'dist' */
  rippleRev: string;
  redis: boolean;
  save: boolean;
  /** ripple: directory for a --cpu-prof profile of the server */
  cpuProfDir?: string;
  /** run the server under `valgrind --tool=callgrind` (counting only while a scenario measures); files go here */
  callgrindDir?: string;
  /** ripple: --workers N (one process per worker on one port; needs --redis) */
  rippleWorkers: number;
}

export function commonOptions(args: Args): CommonOptions {
  return {
    pin: pinPlan(flag(args, 'no-pin'), str(args, 'server-cpus', '0'), str(args, 'generator-cpus', '1')),
    workers: num(args, 'workers', 2),
    rippleRev: flag(args, 'dist') ? 'dist' : str(args, 'ripple-rev', 'HEAD'),
    redis: flag(args, 'redis'),
    save: !flag(args, 'no-save'),
    cpuProfDir: typeof args['cpu-prof'] === 'string' ? (args['cpu-prof'] as string) : flag(args, 'cpu-prof') ? 'bench/results/profiles' : undefined,
    rippleWorkers: num(args, 'ripple-workers', 1),
    callgrindDir: typeof args['callgrind'] === 'string' ? (args['callgrind'] as string) : flag(args, 'callgrind') ? 'bench/results/callgrind' : undefined,
  };
}

export function parseTarget(v: string): TargetName {
  if (v === 'ours') v = 'ripple';
  if (!(TARGETS as string[]).includes(v) && !/^ripple(@[^\s+]+)?(\+recovery)?$/.test(v)) {
    throw new Error(`unknown target ${v} (expected ${TARGETS.join('|')}, ripple@<git rev>, ripple+recovery)`);
  }
  return v as TargetName;
}

/** Pins the generator (this process and every child it forks afterwards) and checks the signer. */
export function prepareGenerator(c: CommonOptions): void {
  selfTest();
  if (c.pin.enabled && c.pin.generatorCpus) pinSelf(c.pin.generatorCpus);
}

export function environment(c: CommonOptions): Record<string, unknown> {
  return {
    date: new Date().toISOString(),
    commit: gitHead(),
    rippleCommit: rippleCommit(c.rippleRev),
    node: process.version,
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? '?',
    pinning: c.pin.note,
    generatorAffinity: procAffinity(process.pid),
    generatorProcesses: `${c.workers} subscriber process(es) + 1 publisher process (raw TCP WebSocket/HTTP clients)`,
  };
}

/** Appends a result line to bench/results/<scenario>.jsonl (git-ignored). */
export function saveResult(scenario: string, record: unknown): void {
  const dir = join(benchDir, 'results');
  mkdirSync(dir, { recursive: true });
  appendFileSync(join(dir, `${scenario}.jsonl`), JSON.stringify(record) + '\n');
}

export const fmt = {
  n(x: number, digits = 0): string {
    if (!Number.isFinite(x)) return '-';
    return x.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
  },
  ms(x: number): string {
    if (!Number.isFinite(x)) return '-';
    return x < 10 ? `${x.toFixed(2)} ms` : x < 100 ? `${x.toFixed(1)} ms` : `${x.toFixed(0)} ms`;
  },
  bytes(x: number): string {
    if (!Number.isFinite(x)) return '-';
    const a = Math.abs(x);
    return a >= 1024 * 1024 ? `${(x / 1024 / 1024).toFixed(1)} MiB` : a >= 1024 ? `${(x / 1024).toFixed(1)} KiB` : `${x.toFixed(0)} B`;
  },
};

export function isMain(metaUrl: string): boolean {
  return process.argv[1] !== undefined && metaUrl === new URL(`file://${process.argv[1]}`).href;
}
