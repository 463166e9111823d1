// Process helpers: CPU pinning with taskset, /proc readings (CPU ticks, VmRSS), child tracking so the
// bench kills exactly the processes it started (by PID), and waiting for HTTP readiness.
import { spawnSync, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';

let tasksetPath: string | null | undefined;

/** Path of taskset (util-linux) or null when it is not installed. */
export function taskset(): string | null {
  if (tasksetPath !== undefined) return tasksetPath;
  const r = spawnSync('sh', ['-c', 'command -v taskset'], { encoding: 'utf8' });
  tasksetPath = r.status === 0 && r.stdout.trim() ? r.stdout.trim() : null;
  return tasksetPath;
}

/** Online CPUs of the machine (not of this process's affinity mask, which pinSelf narrows). */
export function cpuCount(): number {
  return Math.max(1, os.cpus().length);
}

export interface PinPlan {
  enabled: boolean;
  serverCpus: string | null;
  generatorCpus: string | null;
  note: string;
}

/**
 * Server on core 0, generator on core 1 (or the cores given), when taskset exists and the machine has
 * at least two cores. `--no-pin` disables it.
 */
export function pinPlan(disabled: boolean, serverCpus = '0', generatorCpus = '1'): PinPlan {
  if (disabled) return { enabled: false, serverCpus: null, generatorCpus: null, note: 'pinning disabled (--no-pin)' };
  if (!taskset()) return { enabled: false, serverCpus: null, generatorCpus: null, note: 'taskset not found: not pinned' };
  if (cpuCount() < 2) return { enabled: false, serverCpus: null, generatorCpus: null, note: 'one CPU: not pinned' };
  return {
    enabled: true,
    serverCpus,
    generatorCpus,
    note: `taskset: server (and its redis, if any) on cpu ${serverCpus}, generator on cpu ${generatorCpus}`,
  };
}

/** Pins every thread of this process (and so the children it forks later) to `cpus`. */
export function pinSelf(cpus: string): void {
  const ts = taskset();
  if (!ts) return;
  const r = spawnSync(ts, ['-a', '-p', '-c', cpus, String(process.pid)], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`taskset failed: ${r.stderr}`);
}

/** Prefix for a command line so it runs on `cpus` (taskset execs, so the PID stays the same). */
export function pinnedCommand(cpus: string | null, cmd: string, args: string[]): [string, string[]] {
  const ts = taskset();
  if (!cpus || !ts) return [cmd, args];
  return [ts, ['-c', cpus, cmd, ...args]];
}

export const CLK_TCK = (() => {
  const r = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
  const n = Number(r.stdout?.trim());
  return Number.isFinite(n) && n > 0 ? n : 100;
})();

/** A process and every process under it (ripple --workers forks one per worker), from /proc/<pid>/task/<tid>/children. */
export function procTree(pid: number): number[] {
  const out = [pid];
  for (let i = 0; i < out.length; i++) {
    let tids: string[] = [];
    try {
      tids = readdirSync(`/proc/${out[i]}/task`);
    } catch {
      continue; // exited
    }
    for (const tid of tids) {
      try {
        for (const c of readFileSync(`/proc/${out[i]}/task/${tid}/children`, 'utf8').split(' ')) if (c.trim()) out.push(Number(c));
      } catch {
        /* thread gone */
      }
    }
  }
  return out;
}

/**
 * utime+stime of a process (all its threads) and of the processes under it, in ms, from /proc/<pid>/stat
 * (a child that exits inside a measured window takes its share with it).
 */
export function procCpuMs(pid: number): number {
  let ms = 0;
  for (const p of procTree(pid)) {
    try {
      ms += oneProcCpuMs(p);
    } catch (err) {
      if (p === pid) throw err;
    }
  }
  return ms;
}

function oneProcCpuMs(pid: number): number {
  const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const rest = s.slice(s.lastIndexOf(')') + 2).split(' ');
  // fields after ")": state(3) ppid(4) ... utime(14) stime(15) → indexes 11, 12 in `rest`
  const ticks = Number(rest[11]) + Number(rest[12]);
  return (ticks * 1000) / CLK_TCK;
}

/** VmRSS / VmHWM in bytes, from /proc/<pid>/status: of the process and the processes under it, summed. */
export function procMem(pid: number): { rss: number; hwm: number } {
  let rss = 0;
  let hwm = 0;
  for (const p of procTree(pid)) {
    try {
      const m = oneProcMem(p);
      rss += m.rss;
      hwm += m.hwm;
    } catch (err) {
      if (p === pid) throw err;
    }
  }
  return { rss, hwm };
}

function oneProcMem(pid: number): { rss: number; hwm: number } {
  const s = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (name: string) => {
    const m = new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(s);
    return m ? Number(m[1]) * 1024 : NaN;
  };
  return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
}

export function procAffinity(pid: number): string {
  const s = readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = /^Cpus_allowed_list:\s+(\S+)/m.exec(s);
  return m ? m[1] : '?';
}

/** A port that was free a moment ago on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

const started = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of started) if (c.pid && c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    for (const c of started) if (c.pid && c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    process.exit(130);
  });
}

export interface Spawned {
  child: ChildProcess;
  pid: number;
  output(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  hasExited(): boolean;
  /** SIGTERM, then SIGKILL after graceMs. */
  stop(graceMs?: number): Promise<void>;
}

/** Spawns a tracked child; it is killed (by its PID) if the bench exits first. */
export function spawnTracked(cmd: string, args: string[], opts: SpawnOptions): Spawned {
  const child = spawn(cmd, args, { ...opts, stdio: ['ignore', 'pipe', 'pipe'] });
  started.add(child);
  let out = '';
  const keep = (d: Buffer) => {
    out += d.toString();
    if (out.length > 200_000) out = out.slice(-100_000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  let done = false;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => {
      done = true;
      started.delete(child);
      resolve({ code, signal });
    }),
  );
  return {
    child,
    pid: child.pid!,
    output: () => out,
    exited,
    hasExited: () => done,
    async stop(graceMs = 5000) {
      if (done) return;
      child.kill('SIGTERM');
      const t = setTimeout(() => {
        if (!done) child.kill('SIGKILL');
      }, graceMs);
      await exited;
      clearTimeout(t);
    },
  };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls GET url until it answers 200 (or the process exits / the deadline passes). */
export async function waitHttpOk(url: string, proc: Spawned, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (proc.hasExited()) throw new Error(`${what} exited before it was ready:\n${proc.output().slice(-4000)}`);
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
      await res.arrayBuffer();
      if (res.status === 200) return;
    } catch {
      /* not yet */
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} at ${url}:\n${proc.output().slice(-4000)}`);
    await sleep(50);
  }
}

/** Machine-wide CPU counters from /proc/stat, in ms (all cores together). */
export function machineCpu(): { busyMs: number; stealMs: number; softirqMs: number; totalMs: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0];
  const f = line.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal guest guest_nice
  const [user, nice, system, idle, iowait, irq, softirq, steal] = f;
  const toMs = (t: number) => (t * 1000) / CLK_TCK;
  // softirq is left out of busy: on loopback it is mostly the bench's own network traffic (the receive
  // path runs in softirq context and is charged to no process), not interference.
  const busy = user + nice + system + irq;
  return { busyMs: toMs(busy), stealMs: toMs(steal ?? 0), softirqMs: toMs(softirq), totalMs: toMs(busy + softirq + idle + iowait + (steal ?? 0)) };
}

/** load average (1 min) */
export function loadAvg(): number {
  return os.loadavg()[0];
}

/**
 * Waits until the whole machine is quiet (busy < thresholdPct of one core over `quietMs`) or maxWaitMs
 * passed. Returns the busy % of the last sample window and how long it waited.
 */
export async function waitQuiet(maxWaitMs: number, thresholdPct = 15, quietMs = 2000): Promise<{ quiet: boolean; busyPct: number; waitedMs: number }> {
  const start = Date.now();
  for (;;) {
    const a = machineCpu();
    await sleep(quietMs);
    const b = machineCpu();
    const busyPct = ((b.busyMs - a.busyMs) / quietMs) * 100;
    const waitedMs = Date.now() - start;
    if (busyPct < thresholdPct) return { quiet: true, busyPct, waitedMs };
    if (waitedMs >= maxWaitMs) return { quiet: false, busyPct, waitedMs };
  }
}

/**
 * Counts the system calls of some processes (all their threads) from now until stop(), through the
 * kernel's syscall tracepoints (`perf stat`, which works without hardware counters, e.g. in a VM).
 * Syscalls per delivered message do not depend on the machine's other load the way CPU time does.
 * null when perf cannot do it here.
 */
export function countSyscalls(pids: number[]): { stop(): Promise<{ all: number; sends: number } | null> } | null {
  const probe = spawnSync('perf', ['stat', '-x,', '-e', 'raw_syscalls:sys_enter', 'true'], { encoding: 'utf8' });
  if (probe.status !== 0 || /not supported|<not/.test(probe.stderr)) return null;
  const child = spawn('perf', ['stat', '-x,', '-e', 'raw_syscalls:sys_enter', '-e', 'syscalls:sys_enter_sendto', '-e', 'syscalls:sys_enter_writev', '-p', pids.join(',')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  return {
    async stop() {
      await sleep(100);
      child.kill('SIGINT');
      await exited;
      const count = (ev: string) => {
        const line = err.split('\n').find((l) => l.includes(`,${ev},`) || l.endsWith(`,${ev}`) || l.split(',')[2] === ev);
        const n = line ? Number(line.split(',')[0]) : NaN;
        return Number.isFinite(n) ? n : NaN;
      };
      const all = count('raw_syscalls:sys_enter');
      if (!Number.isFinite(all)) return null;
      return { all, sends: (count('syscalls:sys_enter_sendto') || 0) + (count('syscalls:sys_enter_writev') || 0) };
    },
  };
}

/**
 * A process's resident memory by kind of mapping (/proc/<pid>/smaps): `brk` the main malloc heap
 * ([heap]), `anon` other anonymous mappings (V8's pages, the malloc arenas of other threads, thread
 * stacks), `file` mapped files (code). Of the process `pid` alone, not its children.
 */
export function procMemMap(pid: number): { brk: number; anon: number; file: number } {
  const out = { brk: 0, anon: 0, file: 0 };
  let kind: keyof typeof out = 'anon';
  for (const line of readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    const head = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \d+\s*(.*)$/.exec(line);
    if (head) {
      const path = head[1];
      kind = path === '[heap]' ? 'brk' : path === '' || path.startsWith('[') ? 'anon' : 'file';
      continue;
    }
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (rss) out[kind] += Number(rss[1]) * 1024;
  }
  return out;
}
