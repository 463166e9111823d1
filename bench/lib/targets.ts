// Starts the servers under test on a free loopback port, pinned to the server core, and stops exactly
// the processes it started.
//   ripple – `node --import tsx src/cli.ts` from a snapshot of the chosen git revision (default HEAD,
//            see rippleDir), so concurrent edits of the work tree do not change what is measured;
//            `--ripple-rev worktree` runs the work tree as it is, `--dist` runs dist/src/cli.js
//   bare   – bench/bare-uws-server.ts: uWebSockets.js publish with no protocol work (the stack's ceiling)
//   soketi – Soketi 1.6.1 from bench/soketi/node_modules (install with bench/soketi/install.sh)
import { createWriteStream, existsSync, readFileSync, statSync, mkdirSync, writeFileSync, symlinkSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnSync } from 'node:child_process';
import { createConnection } from 'node:net';
import WebSocket from 'ws';
import { freePort, pinnedCommand, spawnTracked, waitHttpOk, sleep, procAffinity, type Spawned } from './proc.js';
import type { Credentials } from './sign.js';

export const benchDir = join(dirname(fileURLToPath(import.meta.url)), '..');
export const repoRoot = join(benchDir, '..');

/**
 * `ripple@<rev>` is ripple at another git revision, for before/after runs paired with `ripple`;
 * `+recovery` (e.g. `ripple+recovery`) turns message recovery on for the bench app and has every
 * subscriber opt in (docs/recovery.md), for on/off runs paired with `ripple`.
 */
export type TargetName = 'ripple' | 'bare' | 'soketi' | `ripple@${string}` | `ripple+recovery` | `ripple@${string}+recovery`;
export const TARGETS: TargetName[] = ['ripple', 'soketi', 'bare'];

export function isRipple(name: TargetName): boolean {
  return name === 'ripple' || name.startsWith('ripple@') || name.startsWith('ripple+');
}

/** ripple with message recovery on, subscribers opting in. */
export function withRecovery(name: TargetName): boolean {
  return isRipple(name) && name.endsWith('+recovery');
}

/** The git revision a ripple target runs: its own `@rev`, else the --ripple-rev option. */
function revOf(name: TargetName, rippleRev = 'HEAD'): string {
  const bare = name.replace(/\+recovery$/, '');
  return bare.startsWith('ripple@') ? bare.slice('ripple@'.length) : rippleRev;
}

export const benchApp: Credentials = { id: 'bench-app', key: 'bench-key', secret: 'bench-secret' };

export interface TargetOptions {
  serverCpus: string | null;
  /** ripple: a git revision to snapshot (default HEAD), 'worktree', or 'dist' (dist/src/cli.js) */
  rippleRev?: string;
  /** start a private redis-server and run the target in its Redis/cluster mode (ripple, soketi) */
  redis?: boolean;
  /** use this already running redis-server (cross-node: several nodes share one) */
  redisPort?: number;
  /** ripple --cpu-prof: write a V8 CPU profile into this directory when the server exits */
  cpuProfDir?: string;
  /** run the server under callgrind, instrumentation off until callgrindCollect(pid, true); output files here */
  callgrindDir?: string;
  /** ripple: WORKERS (its one-process-per-core mode), > 1 needs redis */
  rippleWorkers?: number;
  /** extra env for the target process */
  env?: Record<string, string>;
  /** start node with --inspect on a loopback port so the bench can force a full GC (memory scenario) */
  inspect?: boolean;
  /** extra flags for the target's node process (all targets are Node), e.g. `--max-semi-space-size=1` */
  nodeFlags?: string[];
}

export interface Target {
  name: TargetName;
  port: number;
  pid: number;
  /** other server-side processes started with it (its private redis-server) */
  extraPids: number[];
  /** what exactly runs */
  describe: string;
  affinity: string;
  output(): string;
  alive(): boolean;
  /** Full garbage collection through the inspector (HeapProfiler.collectGarbage); false if unavailable. */
  collectGarbage(): Promise<boolean>;
  /**
   * The V8 heap's used bytes and the bytes it has committed (Runtime.getHeapUsage's usedSize and totalSize)
   * through the inspector; undefined if unavailable.
   */
  heapUsage(): Promise<{ used: number; total: number } | undefined>;
  /** A V8 heap snapshot written to `file` through the inspector; false if unavailable. */
  heapSnapshot(file: string): Promise<boolean>;
  stop(): Promise<void>;
}

export interface Redis {
  port: number;
  proc: Spawned;
}

export async function startRedis(cpus: string | null): Promise<Redis> {
  const port = await freePort();
  const [cmd, args] = pinnedCommand(cpus, 'redis-server', [
    '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
  ]);
  const proc = spawnTracked(cmd, args, {});
  const deadline = Date.now() + 10_000;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = createConnection(port, '127.0.0.1');
      s.once('error', () => resolve(false));
      s.once('connect', () => {
        s.write('PING\r\n');
        s.once('data', (d) => {
          s.destroy();
          resolve(d.toString().startsWith('+PONG'));
        });
      });
    });
    if (ok) return { port, proc };
    if (proc.hasExited() || Date.now() > deadline) throw new Error(`redis-server did not start:\n${proc.output()}`);
    await sleep(50);
  }
}

export function soketiBin(): string {
  return join(benchDir, 'soketi', 'node_modules', '@soketi', 'soketi', 'bin', 'server.js');
}

export function soketiVersion(): string | null {
  const p = join(benchDir, 'soketi', 'node_modules', '@soketi', 'soketi', 'package.json');
  if (!existsSync(p)) return null;
  return (JSON.parse(readFileSync(p, 'utf8')) as { version: string }).version;
}

/** Why a target cannot run here, or null. */
export function targetProblem(name: TargetName, opts: { rippleRev?: string } = {}): string | null {
  if (isRipple(name)) {
    const rev = revOf(name, opts.rippleRev);
    if (rev !== 'worktree' && rev !== 'dist' && spawnSync('git', ['rev-parse', '--verify', '-q', `${rev}^{commit}`], { cwd: repoRoot }).status !== 0) {
      return `no git revision ${rev}`;
    }
    if (rev === 'dist' && !existsSync(join(repoRoot, 'dist', 'src', 'cli.js')))
      return 'dist/src/cli.js missing: run `npm run build` in the repo root (or use the default source snapshot)';
    if (!existsSync(join(repoRoot, 'node_modules', 'uWebSockets.js'))) return 'run `npm ci` in the repo root first';
    return null;
  }
  if (name === 'soketi') {
    if (!existsSync(soketiBin())) return 'Soketi is not installed: run bash bench/soketi/install.sh';
    return null;
  }
  return null;
}

const resolvedRevs = new Map<string, string>();

/** The commit a ripple target runs (resolved once per bench process, so every run uses the same one). */
export function rippleCommit(rev = 'HEAD'): string {
  if (rev === 'worktree' || rev === 'dist') return `${gitHead()}+${rev}`;
  const known = resolvedRevs.get(rev);
  if (known) return known;
  const r = spawnSync('git', ['rev-parse', '--short', `${rev}^{commit}`], { cwd: repoRoot, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`git rev-parse ${rev}: ${r.stderr}`);
  resolvedRevs.set(rev, r.stdout.trim());
  return r.stdout.trim();
}

/**
 * Directory holding ripple's src/ to run: for a git revision, `git archive <sha> src package.json
 * tsconfig.json` extracted under the OS temp dir (once per commit), with node_modules linked to the
 * repo's; for 'worktree' the repo itself.
 */
export function rippleDir(rev = 'HEAD'): string {
  if (rev === 'worktree' || rev === 'dist') return repoRoot;
  const sha = rippleCommit(rev);
  const dir = join(tmpdir(), 'ripple-bench-src', sha);
  // A snapshot made from another checkout links that checkout's node_modules, which may be gone.
  if (existsSync(join(dir, '.complete')) && existsSync(join(dir, 'node_modules', 'tsx'))) return dir;
  const tmp = `${dir}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  const r = spawnSync('sh', ['-c', `git archive ${sha} src package.json tsconfig.json | tar -x -C "${tmp}"`], { cwd: repoRoot, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`git archive ${sha}: ${r.stderr}`);
  symlinkSync(join(repoRoot, 'node_modules'), join(tmp, 'node_modules'));
  writeFileSync(join(tmp, '.complete'), sha + '\n');
  rmSync(dir, { recursive: true, force: true });
  renameSync(tmp, dir);
  return dir;
}

/**
 * ripple's bench app, the same limits as Soketi's default app: client events on and not rate-limited
 * (Soketi's default maxClientEventsPerSecond is -1), presence limit 100 members (both defaults).
 */
function rippleConfigFile(dir: string, recovery: boolean): string {
  const p = join(tmpdir(), `ripple-bench-config-${process.pid}${recovery ? '-recovery' : ''}.json`);
  writeFileSync(
    p,
    JSON.stringify({
      apps: [
        {
          id: benchApp.id,
          key: benchApp.key,
          secret: benchApp.secret,
          enableClientMessages: true,
          maxClientEventsPerSecond: -1,
          maxPresenceMembersPerChannel: 100,
          ...(recovery ? { recovery: { historySize: 100, historyTtl: 300 } } : {}),
        },
      ],
    }),
  );
  void dir;
  return p;
}

export async function startTarget(name: TargetName, opts: TargetOptions): Promise<Target> {
  const problem = targetProblem(name, opts);
  if (problem) throw new Error(`${name}: ${problem}`);
  const port = await freePort();
  let redis: Redis | null = null;
  if (opts.redis && !opts.redisPort && name !== 'bare') redis = await startRedis(opts.serverCpus);
  const redisPort = name === 'bare' ? 0 : (opts.redisPort ?? redis?.port ?? 0);
  const base: Record<string, string> = { ...(process.env as Record<string, string>) };
  delete base.NODE_OPTIONS;
  let cmd: string;
  let args: string[];
  let env: Record<string, string>;
  let cwd = repoRoot;
  let health: string;
  let describe: string;
  let describeExtra = '';
  if (isRipple(name)) {
    const rev = revOf(name, opts.rippleRev);
    const dir = rippleDir(rev);
    const entry = rev === 'dist' ? [join(repoRoot, 'dist', 'src', 'cli.js')] : ['--import', 'tsx', join(dir, 'src', 'cli.ts')];
    cmd = process.execPath;
    args = opts.cpuProfDir ? [`--cpu-prof`, `--cpu-prof-dir=${opts.cpuProfDir}`, ...entry] : entry;
    cwd = dir;
    env = {
      ...base,
      PORT: String(port),
      HOST: '127.0.0.1',
      CONFIG_FILE: rippleConfigFile(dir, withRecovery(name)),
      LOG_LEVEL: 'warn',
      ...(redisPort ? { REDIS_URL: `redis://127.0.0.1:${redisPort}`, REDIS_PREFIX: `ripple-bench-${process.pid}` } : {}),
    };
    if (!redisPort) delete env.REDIS_URL;
    if ((opts.rippleWorkers ?? 1) > 1) {
      if (!redisPort) throw new Error('--ripple-workers needs --redis (ripple shares its state between workers through Redis)');
      env.WORKERS = String(opts.rippleWorkers);
      describeExtra = ` with WORKERS=${opts.rippleWorkers}`;
    }
    delete env.APP_ID;
    delete env.APP_KEY;
    delete env.APP_SECRET;
    health = `http://127.0.0.1:${port}/health`;
    describe = (rev === 'dist' ? `node dist/src/cli.js (built ${builtAt()})` : `node --import tsx src/cli.ts @ ${rippleCommit(rev)}`) + describeExtra;
    if (withRecovery(name)) describe += ' with message recovery (historySize 100), subscribers opted in';
  } else if (name === 'bare') {
    cmd = process.execPath;
    args = ['--import', 'tsx', join(benchDir, 'bare-uws-server.ts')];
    env = { ...base, PORT: String(port), HOST: '127.0.0.1' };
    health = `http://127.0.0.1:${port}/health`;
    describe = 'bench/bare-uws-server.ts (uWebSockets.js publish, no protocol checks)';
  } else {
    const clusterPort = await freePort();
    cmd = process.execPath;
    args = [soketiBin(), 'start'];
    cwd = join(benchDir, 'soketi');
    env = {
      ...base,
      SOKETI_PORT: String(port),
      SOKETI_HOST: '127.0.0.1',
      SOKETI_DEFAULT_APP_ID: benchApp.id,
      SOKETI_DEFAULT_APP_KEY: benchApp.key,
      SOKETI_DEFAULT_APP_SECRET: benchApp.secret,
      SOKETI_DEBUG: 'false',
      SOKETI_METRICS_ENABLED: 'false',
      // Soketi always runs node-discover (UDP hello every 500 ms, broadcast to 255.255.255.255 by
      // default); keep it on loopback, on a port of our choosing.
      SOKETI_CLUSTER_HOST: '127.0.0.1',
      SOKETI_CLUSTER_PORT: String(clusterPort),
      SOKETI_CLUSTER_UNICAST_ADDRESSES: '["127.0.0.1"]',
      SOKETI_METRICS_SERVER_PORT: String(await freePort()),
      SOKETI_SHUTDOWN_GRACE_PERIOD: '200',
      // the same app limits as ripple's bench app (client events on, not rate-limited)
      SOKETI_DEFAULT_APP_ENABLE_CLIENT_MESSAGES: 'true',
      SOKETI_DEFAULT_APP_MAX_CLIENT_EVENTS_PER_SEC: '-1',
      ...(redisPort
        ? {
            SOKETI_ADAPTER_DRIVER: 'redis',
            SOKETI_ADAPTER_REDIS_PREFIX: `soketi-bench-${process.pid}`,
            SOKETI_DB_REDIS_HOST: '127.0.0.1',
            SOKETI_DB_REDIS_PORT: String(redisPort),
          }
        : {}),
    };
    health = `http://127.0.0.1:${port}/ready`;
    describe = `soketi ${soketiVersion()} (bin/server.js start, uWebSockets.js → @trufflesuite/uws-js-unofficial@20.30.0-unofficial.0)`;
  }
  if (opts.env) Object.assign(env, opts.env);
  let inspectPort = 0;
  if (opts.nodeFlags?.length) args = [...opts.nodeFlags, ...args];
  if (opts.inspect) {
    inspectPort = await freePort();
    args = [`--inspect=127.0.0.1:${inspectPort}`, ...args];
  }
  if (opts.callgrindDir) {
    mkdirSync(opts.callgrindDir, { recursive: true });
    const out = join(resolve(opts.callgrindDir), `callgrind.${name.replace(/[^\w.-]/g, '_')}.%p`);
    args = ['--tool=callgrind', '--instr-atstart=no', `--callgrind-out-file=${out}`, cmd, ...args];
    cmd = 'valgrind';
    Object.assign(env, VGDB_ENV);
  }
  const [c, a] = pinnedCommand(opts.serverCpus, cmd, args);
  const proc = spawnTracked(c, a, { cwd, env });
  try {
    await waitHttpOk(health, proc, opts.callgrindDir ? 900_000 : 30_000, name);
  } catch (err) {
    await proc.stop(1000);
    if (redis) await redis.proc.stop(1000);
    throw err;
  }
  // taskset execs the real program, so the PID is the server's own.
  const affinity = procAffinity(proc.pid);
  return {
    name,
    port,
    pid: proc.pid,
    extraPids: redis ? [redis.proc.pid] : [],
    describe: describe + (redisPort ? ` + redis-server :${redisPort}` : ''),
    affinity,
    output: proc.output,
    alive: () => !proc.hasExited(),
    collectGarbage: () => (inspectPort ? inspectorGc(inspectPort) : Promise.resolve(false)),
    heapUsage: () => (inspectPort ? inspectorHeapUsage(inspectPort) : Promise.resolve(undefined)),
    heapSnapshot: (file) => (inspectPort ? inspectorSnapshot(inspectPort, file) : Promise.resolve(false)),
    async stop() {
      await proc.stop(opts.callgrindDir ? 120_000 : 8000);
      if (redis) await redis.proc.stop(2000);
    },
  };
}

/** One inspector session with a node process listening with --inspect: calls, and the events they stream. */
async function inspectorSession(port: number): Promise<{ call(method: string, params?: object): Promise<unknown>; on(method: string, f: (params: unknown) => void): void; close(): void } | null> {
  const list = (await (await fetch(`http://127.0.0.1:${port}/json/list`)).json()) as { webSocketDebuggerUrl: string }[];
  if (!list.length) return null;
  const ws = new WebSocket(list[0].webSocketDebuggerUrl, { perMessageDeflate: false, maxPayload: 1 << 30 });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  let id = 0;
  const waiting = new Map<number, (result: unknown) => void>();
  const listeners = new Map<string, (params: unknown) => void>();
  ws.on('message', (d: Buffer) => {
    const m = JSON.parse(d.toString()) as { id?: number; method?: string; params?: unknown; result?: unknown };
    if (m.id !== undefined) waiting.get(m.id)?.(m.result);
    else if (m.method) listeners.get(m.method)?.(m.params);
  });
  return {
    call: (method, params) =>
      new Promise((resolve, reject) => {
        const my = ++id;
        const t = setTimeout(() => reject(new Error(`inspector ${method} timed out`)), 300_000);
        waiting.set(my, (result) => {
          clearTimeout(t);
          waiting.delete(my);
          resolve(result);
        });
        ws.send(JSON.stringify({ id: my, method, params }));
      }),
    on: (method, f) => void listeners.set(method, f),
    close: () => ws.close(),
  };
}

/** Asks a node process listening with --inspect for a full GC (twice, so weak/finalized objects go too). */
async function inspectorGc(port: number): Promise<boolean> {
  const s = await inspectorSession(port);
  if (!s) return false;
  try {
    await s.call('HeapProfiler.collectGarbage');
    await s.call('HeapProfiler.collectGarbage');
  } finally {
    s.close();
  }
  return true;
}

/** The used and the committed size of the V8 heap of a node process listening with --inspect. */
async function inspectorHeapUsage(port: number): Promise<{ used: number; total: number } | undefined> {
  const s = await inspectorSession(port);
  if (!s) return undefined;
  try {
    const u = (await s.call('Runtime.getHeapUsage')) as { usedSize: number; totalSize: number };
    return { used: u.usedSize, total: u.totalSize };
  } finally {
    s.close();
  }
}

/** Writes a V8 heap snapshot of a node process listening with --inspect to `file` (it collects garbage first). */
async function inspectorSnapshot(port: number, file: string): Promise<boolean> {
  const s = await inspectorSession(port);
  if (!s) return false;
  const out = createWriteStream(file);
  try {
    s.on('HeapProfiler.addHeapSnapshotChunk', (p) => out.write((p as { chunk: string }).chunk));
    await s.call('HeapProfiler.takeHeapSnapshot', { reportProgress: false });
  } finally {
    s.close();
    await new Promise((resolve) => out.end(resolve));
  }
  return true;
}

function builtAt(): string {
  try {
    return statSync(join(repoRoot, 'dist', 'src', 'cli.js')).mtime.toISOString();
  } catch {
    return '?';
  }
}

export function gitHead(): string {
  const r = spawnSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: repoRoot, encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : '?';
}

/** vgdb (behind callgrind_control) names its pipes after USER/LOGNAME and HOST: the same on both sides. */
const VGDB_ENV = { USER: 'ripple-bench', LOGNAME: 'ripple-bench', HOST: 'localhost' };

/** callgrind: starts (true) or stops counting instructions in a server started with callgrindDir. */
export function callgrindCollect(pid: number, on: boolean): void {
  const r = spawnSync('callgrind_control', ['-i', on ? 'on' : 'off', String(pid)], { encoding: 'utf8', env: { ...process.env, ...VGDB_ENV } });
  if (/error opening|syscall failed/.test(r.stderr)) throw new Error(`callgrind_control -i ${on ? 'on' : 'off'} ${pid}: ${r.stderr}`);
  // callgrind_control exits 0 even when it finds no such run: its answer says "OK."
  if (r.status !== 0 || !/OK\./.test(r.stdout)) throw new Error(`callgrind_control -i ${on ? 'on' : 'off'} ${pid}: ${r.stderr || r.stdout}`);
}
