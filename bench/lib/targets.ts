// Starts the servers under test on a free loopback port, pinned to the server core, and stops exactly
// the processes it started.
//   ours   – `node dist/src/cli.js` (or `node --import tsx src/cli.ts` with source: true)
//   bare   – bench/bare-uws-server.ts: uWebSockets.js publish with no protocol work (the stack's ceiling)
//   soketi – Soketi 1.6.1 from bench/soketi/node_modules (install with bench/soketi/install.sh)
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnSync } from 'node:child_process';
import { createConnection } from 'node:net';
import WebSocket from 'ws';
import { freePort, pinnedCommand, spawnTracked, waitHttpOk, sleep, procAffinity, type Spawned } from './proc.js';
import type { Credentials } from './sign.js';

export const benchDir = join(dirname(fileURLToPath(import.meta.url)), '..');
export const repoRoot = join(benchDir, '..');

export type TargetName = 'ours' | 'bare' | 'soketi';
export const TARGETS: TargetName[] = ['ours', 'bare', 'soketi'];

export const benchApp: Credentials = { id: 'bench-app', key: 'bench-key', secret: 'bench-secret' };

export interface TargetOptions {
  serverCpus: string | null;
  /** ours: run src/cli.ts through tsx instead of dist/src/cli.js */
  source?: boolean;
  /** start a private redis-server and run the target in its Redis/cluster mode (ours, soketi) */
  redis?: boolean;
  /** extra env for the target process */
  env?: Record<string, string>;
  /** start node with --inspect on a loopback port so the bench can force a full GC (memory scenario) */
  inspect?: boolean;
}

export interface Target {
  name: TargetName;
  port: number;
  pid: number;
  /** what exactly runs */
  describe: string;
  affinity: string;
  output(): string;
  alive(): boolean;
  /** Full garbage collection through the inspector (HeapProfiler.collectGarbage); false if unavailable. */
  collectGarbage(): Promise<boolean>;
  stop(): Promise<void>;
}

interface Redis {
  port: number;
  proc: Spawned;
}

async function startRedis(cpus: string | null): Promise<Redis> {
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
export function targetProblem(name: TargetName, opts: { source?: boolean } = {}): string | null {
  if (name === 'ours') {
    if (opts.source) return existsSync(join(repoRoot, 'src', 'cli.ts')) ? null : 'src/cli.ts does not exist yet';
    if (!existsSync(join(repoRoot, 'dist', 'src', 'cli.js')))
      return 'dist/src/cli.js missing: run `npm run build` in the repo root (or pass --source)';
    return null;
  }
  if (name === 'soketi') {
    if (!existsSync(soketiBin())) return 'Soketi is not installed: run bench/soketi/install.sh';
    return null;
  }
  return null;
}

export async function startTarget(name: TargetName, opts: TargetOptions): Promise<Target> {
  const problem = targetProblem(name, opts);
  if (problem) throw new Error(`${name}: ${problem}`);
  const port = await freePort();
  let redis: Redis | null = null;
  if (opts.redis && name !== 'bare') redis = await startRedis(opts.serverCpus);
  const base: Record<string, string> = { ...(process.env as Record<string, string>) };
  delete base.NODE_OPTIONS;
  let cmd: string;
  let args: string[];
  let env: Record<string, string>;
  let cwd = repoRoot;
  let health: string;
  let describe: string;
  if (name === 'ours') {
    const entry = opts.source ? ['--import', 'tsx', join(repoRoot, 'src', 'cli.ts')] : [join(repoRoot, 'dist', 'src', 'cli.js')];
    cmd = process.execPath;
    args = entry;
    env = {
      ...base,
      PORT: String(port),
      HOST: '127.0.0.1',
      APP_ID: benchApp.id,
      APP_KEY: benchApp.key,
      APP_SECRET: benchApp.secret,
      LOG_LEVEL: 'warn',
      ...(redis ? { REDIS_URL: `redis://127.0.0.1:${redis.port}` } : {}),
    };
    if (!redis) delete env.REDIS_URL;
    delete env.CONFIG_FILE;
    health = `http://127.0.0.1:${port}/health`;
    describe = opts.source ? 'node --import tsx src/cli.ts' : `node dist/src/cli.js (built ${builtAt()})`;
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
      ...(redis
        ? {
            SOKETI_ADAPTER_DRIVER: 'redis',
            SOKETI_DB_REDIS_HOST: '127.0.0.1',
            SOKETI_DB_REDIS_PORT: String(redis.port),
          }
        : {}),
    };
    health = `http://127.0.0.1:${port}/ready`;
    describe = `soketi ${soketiVersion()} (bin/server.js start, uWebSockets.js → @trufflesuite/uws-js-unofficial@20.30.0-unofficial.0)`;
  }
  if (opts.env) Object.assign(env, opts.env);
  let inspectPort = 0;
  if (opts.inspect) {
    inspectPort = await freePort();
    args = [`--inspect=127.0.0.1:${inspectPort}`, ...args];
  }
  const [c, a] = pinnedCommand(opts.serverCpus, cmd, args);
  const proc = spawnTracked(c, a, { cwd, env });
  try {
    await waitHttpOk(health, proc, 30_000, name);
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
    describe: describe + (redis ? ` + redis-server :${redis.port}` : ''),
    affinity,
    output: proc.output,
    alive: () => !proc.hasExited(),
    collectGarbage: () => (inspectPort ? inspectorGc(inspectPort) : Promise.resolve(false)),
    async stop() {
      await proc.stop(8000);
      if (redis) await redis.proc.stop(2000);
    },
  };
}

/** Asks a node process listening with --inspect for a full GC (twice, so weak/finalized objects go too). */
async function inspectorGc(port: number): Promise<boolean> {
  const list = (await (await fetch(`http://127.0.0.1:${port}/json/list`)).json()) as { webSocketDebuggerUrl: string }[];
  if (!list.length) return false;
  const ws = new WebSocket(list[0].webSocketDebuggerUrl, { perMessageDeflate: false });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  let id = 0;
  const call = (method: string) =>
    new Promise<void>((resolve, reject) => {
      const my = ++id;
      const t = setTimeout(() => reject(new Error(`inspector ${method} timed out`)), 30_000);
      const onMsg = (d: Buffer) => {
        const m = JSON.parse(d.toString()) as { id?: number };
        if (m.id === my) {
          clearTimeout(t);
          ws.off('message', onMsg);
          resolve();
        }
      };
      ws.on('message', onMsg);
      ws.send(JSON.stringify({ id: my, method }));
    });
  try {
    await call('HeapProfiler.collectGarbage');
    await call('HeapProfiler.collectGarbage');
  } finally {
    ws.close();
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
