// Starts real server nodes and real redis-server processes on free loopback ports for tests,
// and stops exactly the processes it started.
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { eventually, sleep } from './eventually.js';

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface AppCredentials {
  id: string;
  key: string;
  secret: string;
}

export const defaultApp: AppCredentials = { id: 'app-id', key: 'app-key', secret: 'app-secret' };

/** A port that was free a moment ago on 127.0.0.1. */
export async function freePort(): Promise<number> {
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

const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

function track(child: ChildProcess): void {
  live.add(child);
  child.on('exit', () => live.delete(child));
}

export interface NodeOptions {
  /** Extra environment variables (PORT is set by the harness unless given). */
  env?: Record<string, string>;
  /** A config object written to a temp JSON file and passed with --config. */
  config?: unknown;
  port?: number;
  /** Expect the process to exit instead of listening (for config-rejection tests). */
  expectExit?: boolean;
  /** The node serves TLS: poll /health over https (certificate not verified). */
  https?: boolean;
  /** Where the node answers its health check (under PATH_PREFIX, say); /health unless given. */
  healthPath?: string;
}

export interface NodeHandle {
  port: number;
  /** http://127.0.0.1:<port> */
  url: string;
  pid: number;
  process: ChildProcess;
  /** Everything the process printed so far (stdout and stderr). */
  output(): string;
  /** SIGTERM and wait for exit; SIGKILL after timeoutMs. */
  stop(timeoutMs?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGKILL and wait for exit. */
  kill(): Promise<void>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Starts `src/cli.ts` as a child process and waits until /health answers. */
export async function startNode(opts: NodeOptions = {}): Promise<NodeHandle> {
  // A port free a moment ago may be taken before the node binds it (another test file's process on a
  // busy machine): a port the harness picked is picked again, up to three times.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startNodeOn(opts.port ?? (await freePort()), opts);
    } catch (err) {
      if (opts.port !== undefined || attempt >= 3 || !/ripple: cannot listen on/.test((err as Error).message)) throw err;
    }
  }
}

async function startNodeOn(port: number, opts: NodeOptions): Promise<NodeHandle> {
  const args = ['--import', 'tsx', join(repoRoot, 'src', 'cli.ts')];
  if (opts.config !== undefined) {
    const dir = mkdtempSync(join(tmpdir(), 'ripple-cfg-'));
    const file = join(dir, 'config.json');
    writeFileSync(file, typeof opts.config === 'string' ? opts.config : JSON.stringify(opts.config));
    args.push('--config', file);
  }
  const env: Record<string, string> = {
    ...(process.env as Record<string, string>),
    PORT: String(port),
    HOST: '127.0.0.1',
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'warn',
    ...opts.env,
  };
  if (env.REDIS_URL?.startsWith(CLUSTER_URL)) {
    env.REDIS_CLUSTER_NODES = env.REDIS_URL.slice(CLUSTER_URL.length);
    delete env.REDIS_URL;
  }
  const child = spawn(process.execPath, args, { cwd: repoRoot, env, stdio: ['ignore', 'pipe', 'pipe'] });
  track(child);
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  let hasExited = false;
  void exited.then(() => (hasExited = true));
  const url = `http://127.0.0.1:${port}`;
  const handle: NodeHandle = {
    port,
    url,
    pid: child.pid!,
    process: child,
    output: () => out,
    exited,
    async stop(timeoutMs = 10_000) {
      if (hasExited) return exited;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      const res = await exited;
      clearTimeout(timer);
      return res;
    },
    async kill() {
      if (!hasExited) child.kill('SIGKILL');
      await exited;
    },
  };
  if (opts.expectExit) {
    await exited;
    return handle;
  }
  try {
    await eventually(
      async () => {
        // A node that exited will not answer: fail now rather than at the deadline.
        if (hasExited) throw new Error(`node on port ${port} exited before /health answered`);
        if (opts.https) return httpsHealthy(port);
        return fetch(`${url}${opts.healthPath ?? '/health'}`).then(
          (res) => res.status === 200,
          () => false,
        );
      },
      { timeoutMs: 20_000, intervalMs: 50, what: `node on port ${port}` },
    );
  } catch (err) {
    await handle.kill();
    throw new Error(`${(err as Error).message}\n--- node output ---\n${out}`);
  }
  return handle;
}

function httpsHealthy(port: number): Promise<boolean> {
  return import('node:https').then(
    ({ request }) =>
      new Promise<boolean>((resolve) => {
        request({ host: '127.0.0.1', port, path: '/health', rejectUnauthorized: false }, (res) => {
          res.resume();
          resolve(res.statusCode === 200);
        })
          .on('error', () => resolve(false))
          .end();
      }),
  );
}

export interface RedisHandle {
  port: number;
  url: string;
  pid: number;
  stop(): Promise<void>;
  /** Kill and start again on the same port (empty dataset). */
  restart(downMs?: number): Promise<void>;
}

/** The url of a Redis Cluster handle (RIPPLE_TEST_REDIS=cluster): startNode turns it into REDIS_CLUSTER_NODES. */
const CLUSTER_URL = 'redis-cluster://';

/**
 * Starts a private redis-server on a free port, with no persistence. With RIPPLE_TEST_REDIS=cluster
 * (and no port asked for), a Redis Cluster of three primaries and three replicas instead
 * (redis-cluster.ts), whose url startNode passes on as REDIS_CLUSTER_NODES: the cluster-mode suites
 * run unchanged on Redis Cluster (docs/redis-cluster.md).
 */
export async function startRedis(port?: number): Promise<RedisHandle> {
  if (port === undefined && process.env.RIPPLE_TEST_REDIS === 'cluster') {
    const { startRedisCluster } = await import('./redis-cluster.js');
    const c = await startRedisCluster();
    return {
      port: c.ports[0],
      url: CLUSTER_URL + c.seeds.join(','),
      get pid() {
        return c.pid(c.ports[0]);
      },
      stop: () => c.stop(),
      restart: (downMs) => c.restart(downMs),
    };
  }
  const p = port ?? (await freePort());
  let child: ChildProcess;
  const launch = async () => {
    child = spawn('redis-server', ['--port', String(p), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
      stdio: 'ignore',
    });
    track(child);
    const { Socket } = await import('node:net');
    await eventually(
      () =>
        new Promise<boolean>((resolve) => {
          const s = new Socket();
          s.once('error', () => resolve(false));
          s.connect(p, '127.0.0.1', () => {
            s.write('PING\r\n');
            s.once('data', (d) => {
              s.destroy();
              resolve(d.toString().startsWith('+PONG'));
            });
          });
        }),
      { timeoutMs: 10_000, intervalMs: 50, retryThrows: true, what: `redis on ${p}` },
    );
  };
  const stopChild = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const done = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await done;
  };
  await launch();
  return {
    port: p,
    url: `redis://127.0.0.1:${p}`,
    get pid() {
      return child.pid!;
    },
    stop: stopChild,
    async restart(downMs = 0) {
      await stopChild();
      if (downMs) await sleep(downMs);
      await launch();
    },
  };
}
