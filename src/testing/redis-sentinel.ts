// A private Redis Sentinel setup for tests: one primary, two replicas and three sentinels on free
// loopback ports, no persistence; killed by PID. ripple reaches it with redisOptions
// { sentinels, name } (ioredis asks the sentinels for the current primary).
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { eventually } from './eventually.js';
import { freePort } from './harness.js';

const run = promisify(execFile);

export interface RedisSentinelHandle {
  /** the monitored group's name */
  name: string;
  sentinels: { host: string; port: number }[];
  /** ports of the primary and replicas as started (the first is the primary) */
  redisPorts: number[];
  /** The port of the primary the sentinels name now. */
  primary(): Promise<number>;
  /** SIGKILLs the redis-server on `port`. */
  kill(port: number): Promise<void>;
  stop(): Promise<void>;
}

const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

export async function startRedisSentinel(o: { downAfterMs?: number } = {}): Promise<RedisSentinelHandle> {
  const name = 'ripple-test';
  const dir = mkdtempSync(join(tmpdir(), 'ripple-sentinel-'));
  const children = new Map<number, ChildProcess>();
  const spawnTracked = (port: number, args: string[]) => {
    const child = spawn('redis-server', args, { stdio: 'ignore' });
    live.add(child);
    child.on('exit', () => live.delete(child));
    children.set(port, child);
  };
  const cli = async (port: number, ...args: string[]) => (await run('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args])).stdout.trim();
  const ping = (port: number) => eventually(async () => (await cli(port, 'PING')) === 'PONG', { timeoutMs: 10_000, intervalMs: 50, retryThrows: true, what: `redis ${port}` });

  const redisPorts = [await freePort(), await freePort(), await freePort()];
  const base = (p: number) => ['--port', String(p), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir];
  spawnTracked(redisPorts[0], base(redisPorts[0]));
  await ping(redisPorts[0]);
  for (const p of redisPorts.slice(1)) {
    spawnTracked(p, [...base(p), '--replicaof', '127.0.0.1', String(redisPorts[0])]);
    await ping(p);
  }
  const sentinelPorts = [await freePort(), await freePort(), await freePort()];
  for (const p of sentinelPorts) {
    const conf = join(dir, `sentinel-${p}.conf`);
    writeFileSync(
      conf,
      [
        `port ${p}`,
        'bind 127.0.0.1',
        `dir ${dir}`,
        `sentinel monitor ${name} 127.0.0.1 ${redisPorts[0]} 2`,
        `sentinel down-after-milliseconds ${name} ${o.downAfterMs ?? 1000}`,
        `sentinel failover-timeout ${name} 5000`,
        `sentinel parallel-syncs ${name} 1`,
        '',
      ].join('\n'),
    );
    spawnTracked(p, [conf, '--sentinel']);
    await ping(p);
  }
  const handle: RedisSentinelHandle = {
    name,
    sentinels: sentinelPorts.map((port) => ({ host: '127.0.0.1', port })),
    redisPorts,
    async primary() {
      const [, port] = (await cli(sentinelPorts[0], 'SENTINEL', 'get-master-addr-by-name', name)).split('\n');
      return Number(port);
    },
    async kill(port) {
      const c = children.get(port)!;
      if (c.exitCode !== null || c.signalCode !== null) return;
      const done = new Promise((r) => c.once('exit', r));
      c.kill('SIGKILL');
      await done;
    },
    async stop() {
      for (const p of children.keys()) await handle.kill(p);
      rmSync(dir, { recursive: true, force: true });
    },
  };
  // Every sentinel knows the replicas and the other sentinels before a test kills anything.
  await eventually(
    async () => {
      for (const p of sentinelPorts) {
        const info = await cli(p, 'SENTINEL', 'master', name);
        const f = info.split('\n');
        const val = (k: string) => Number(f[f.indexOf(k) + 1]);
        if (val('num-slaves') < 2 || val('num-other-sentinels') < 2) return false;
      }
      return true;
    },
    { timeoutMs: 30_000, intervalMs: 200, retryThrows: true, what: 'sentinels see the replicas and each other' },
  );
  return handle;
}
