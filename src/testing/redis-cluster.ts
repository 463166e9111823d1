// A private Redis Cluster for tests: redis-server processes with --cluster-enabled on free loopback
// ports (each port and its cluster bus port, port + 10000), joined by `redis-cli --cluster create`,
// with no persistence; killed by PID. Also the topology changes the tests make: a primary's SIGKILL
// (its replica is promoted) and a slot migration (`redis-cli --cluster reshard`).
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { eventually } from './eventually.js';

const run = promisify(execFile);

export interface ClusterNodeInfo {
  id: string;
  port: number;
  primary: boolean;
  /** for a replica: its primary's id */
  of?: string;
  failed: boolean;
  /** slot ranges [from, to] */
  slots: [number, number][];
}

export interface RedisClusterHandle {
  /** "127.0.0.1:port" of every node started: ripple's REDIS_CLUSTER_NODES */
  seeds: string[];
  ports: number[];
  /** A redis-cli reply from the node on `port` (arguments as separate words). */
  cli(port: number, ...args: string[]): Promise<string>;
  /** The topology as the node on `port` (or the first live one) sees it. */
  nodes(port?: number): Promise<ClusterNodeInfo[]>;
  /** The port of the primary serving `slot`. */
  primaryOf(slot: number): Promise<number>;
  /** The slot of a key or shard channel name. */
  keySlot(name: string): Promise<number>;
  /** SIGKILLs the node on `port`. */
  kill(port: number): Promise<void>;
  /** Until every live node reports cluster_state:ok and agrees that every slot is served by a live primary. */
  waitHealthy(timeoutMs?: number): Promise<void>;
  /** Moves `count` slots from the primary on `fromPort` to the one on `toPort`, keys and all (redis-cli --cluster reshard). */
  reshard(fromPort: number, toPort: number, count: number): Promise<void>;
  /**
   * SIGKILLs every node and starts them again on the same ports with their cluster config (same
   * nodes, roles and slots) and an empty dataset: a whole-cluster restart without persistence.
   */
  restart(downMs?: number): Promise<void>;
  /** redis-server's pid on `port` */
  pid(port: number): number;
  stop(): Promise<void>;
}

const live = new Set<ChildProcess>();
const dirs = new Set<string>();
process.on('exit', () => {
  for (const child of live) child.kill('SIGKILL');
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/** A port free on loopback whose cluster bus port (port + 10000) is free too. */
async function freeClusterPort(taken: Set<number>): Promise<number> {
  for (let i = 0; i < 200; i++) {
    const p = 20000 + Math.floor(Math.random() * 15000);
    if (taken.has(p) || taken.has(p + 10000) || taken.has(p - 10000)) continue;
    if ((await isFree(p)) && (await isFree(p + 10000))) return p;
  }
  throw new Error('no free port pair for a Redis Cluster node');
}

export function parseNodes(text: string): ClusterNodeInfo[] {
  return text
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const f = line.split(' ');
      const flags = f[2].split(',');
      const slots: [number, number][] = [];
      for (const s of f.slice(8)) {
        if (s.startsWith('[')) continue; // a slot being imported or migrated
        const [a, b] = s.split('-').map(Number);
        slots.push([a, b ?? a]);
      }
      return {
        id: f[0],
        port: Number(f[1].split('@')[0].split(':').pop()),
        primary: flags.includes('master'),
        of: f[3] === '-' ? undefined : f[3],
        failed: flags.includes('fail') || flags.includes('fail?'),
        slots,
      };
    });
}

/** Starts `primaries` primaries with `replicas` replicas each and joins them into one cluster. */
export async function startRedisCluster(o: { primaries?: number; replicas?: number; nodeTimeoutMs?: number } = {}): Promise<RedisClusterHandle> {
  const primaries = o.primaries ?? 3;
  const replicas = o.replicas ?? 1;
  const dir = mkdtempSync(join(tmpdir(), 'ripple-redis-cluster-'));
  dirs.add(dir);
  const taken = new Set<number>();
  const ports: number[] = [];
  for (let i = 0; i < primaries * (1 + replicas); i++) {
    const p = await freeClusterPort(taken);
    taken.add(p);
    ports.push(p);
  }
  const children = new Map<number, ChildProcess>();
  const launch = (p: number) => {
    const child = spawn(
      'redis-server',
      [
        '--port', String(p), '--bind', '127.0.0.1', '--cluster-enabled', 'yes', '--cluster-config-file', join(dir, `nodes-${p}.conf`),
        '--cluster-node-timeout', String(o.nodeTimeoutMs ?? 1500), '--cluster-announce-ip', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir,
        // a replica's first sync at once (diskless sync waits 5 s for more replicas by default)
        '--repl-diskless-sync-delay', '0',
      ],
      { stdio: 'ignore' },
    );
    live.add(child);
    child.on('exit', () => live.delete(child));
    children.set(p, child);
  };
  for (const p of ports) launch(p);
  const cli = async (port: number, ...args: string[]) => (await run('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args])).stdout.trim();
  const alive = (p: number) => {
    const c = children.get(p)!;
    return c.exitCode === null && c.signalCode === null;
  };
  for (const p of ports) await eventually(async () => (await cli(p, 'PING')) === 'PONG', { timeoutMs: 10_000, intervalMs: 50, retryThrows: true, what: `redis cluster node ${p}` });
  if (ports.length >= 3) {
    await run('redis-cli', ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', String(replicas), '--cluster-yes']);
  } else {
    // redis-cli creates clusters of three primaries or more: one primary takes every slot itself.
    if (ports.length !== 1) throw new Error('a cluster of fewer than 3 nodes must be one primary');
    await cli(ports[0], 'CLUSTER', 'ADDSLOTSRANGE', '0', '16383');
  }

  const handle: RedisClusterHandle = {
    seeds: ports.map((p) => `127.0.0.1:${p}`),
    ports,
    cli,
    async nodes(port) {
      const p = port ?? ports.find(alive)!;
      return parseNodes(await cli(p, 'CLUSTER', 'NODES'));
    },
    async primaryOf(slot) {
      const n = (await handle.nodes()).find((x) => x.primary && !x.failed && x.slots.some(([a, b]) => slot >= a && slot <= b));
      if (!n) throw new Error(`no live primary serves slot ${slot}`);
      return n.port;
    },
    async keySlot(name) {
      return Number(await cli(ports.find(alive)!, 'CLUSTER', 'KEYSLOT', name));
    },
    async kill(port) {
      const c = children.get(port)!;
      if (!alive(port)) return;
      const done = new Promise((r) => c.once('exit', r));
      c.kill('SIGKILL');
      await done;
    },
    async waitHealthy(timeoutMs = 30_000) {
      await eventually(
        async () => {
          for (const p of ports.filter(alive)) {
            if (!(await cli(p, 'CLUSTER', 'INFO')).includes('cluster_state:ok')) return false;
            const view = parseNodes(await cli(p, 'CLUSTER', 'NODES'));
            let covered = 0;
            for (const n of view) if (n.primary && !n.failed && alive(n.port)) for (const [a, b] of n.slots) covered += b - a + 1;
            if (covered !== 16384) return false;
          }
          return true;
        },
        { timeoutMs, intervalMs: 200, retryThrows: true, what: 'redis cluster healthy' },
      );
    },
    async reshard(fromPort, toPort, count) {
      const view = await handle.nodes(fromPort);
      const from = view.find((n) => n.port === fromPort)!;
      const to = view.find((n) => n.port === toPort)!;
      await run('redis-cli', [
        '--cluster', 'reshard', `127.0.0.1:${fromPort}`, '--cluster-from', from.id, '--cluster-to', to.id, '--cluster-slots', String(count), '--cluster-yes',
        '--cluster-pipeline', '100',
      ]);
    },
    async restart(downMs = 0) {
      for (const p of ports) await handle.kill(p);
      if (downMs) await new Promise((r) => setTimeout(r, downMs));
      for (const p of ports) launch(p);
      await handle.waitHealthy();
    },
    pid: (port) => children.get(port)!.pid!,
    async stop() {
      // The cluster config stays (until this process exits): restart() after stop() starts the same cluster.
      for (const p of ports) await handle.kill(p);
    },
  };
  await handle.waitHealthy();
  // A replica that has not finished its first sync does not stand for election (its data counts as
  // too old), so a primary killed before then is never replaced: wait for every replica's link.
  if (ports.length >= 3 && replicas > 0) {
    await eventually(
      async () => {
        let synced = 0;
        for (const p of ports) if (/master_link_status:up/.test(await cli(p, 'INFO', 'replication'))) synced++;
        return synced === primaries * replicas;
      },
      { timeoutMs: 30_000, intervalMs: 100, retryThrows: true, what: 'every replica of the redis cluster synced with its primary' },
    );
  }
  return handle;
}
