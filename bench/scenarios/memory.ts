// Scenario `memory`: N idle connections, each subscribed to its own public channel. Reports the
// server's VmRSS growth per connection ((after - before) / N, from /proc/<pid>/status, each reading the
// median of several samples taken after a settle period) and how fast the connections were opened
// (connect + connection_established + subscribe + subscription_succeeded, `concurrency` in flight per
// subscriber process).
// Run: node --import tsx bench/scenarios/memory.ts --target bare --connections 2000
import { parseArgs, num, str, flag } from '../lib/args.js';
import { LoadGen, clientAddresses } from '../lib/loadgen.js';
import { procCpuMs, procMem, procMemMap, sleep, machineCpu } from '../lib/proc.js';
import { median } from '../lib/hist.js';
import { startTarget, benchApp, type TargetName, type Target } from '../lib/targets.js';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { heapGrowth, formatHeapGrowth, type HeapGrowth } from './memory-heap.js';
import { commonOptions, prepareGenerator, environment, saveResult, parseTarget, fmt, isMain, type CommonOptions } from '../lib/common.js';

export interface MemoryOptions extends CommonOptions {
  target: TargetName;
  connections: number;
  warm: number; // connections opened (and kept) before the "before" reading, so one-time costs are excluded
  settle: number; // s to wait before each reading
  concurrency: number; // handshakes in flight per subscriber process
  /** the connections are opened in this many equal parts, with a reading after each (for the slope) */
  steps: number;
  /** 0: each connection on a channel of its own; K: the connections spread over K channels */
  channels: number;
  gc: boolean; // force a full GC in the server (via --inspect) before each reading
  /** write V8 heap snapshots (before and after the connections) here and break the heap's growth down per connection */
  heapSnapshotDir?: string;
  /**
   * MiB: the server's V8 young generation capped (`--max-semi-space-size`, every target alike). A fixed
   * cost, not a per-connection one, but how much of it a connection burst leaves committed moves RSS by
   * up to ~17 MiB a process between runs; capped, RSS per connection is steadier.
   */
  semiSpace?: number;
}

export function memoryOptions(args: ReturnType<typeof parseArgs>): MemoryOptions {
  return {
    ...commonOptions(args),
    target: parseTarget(str(args, 'target', 'ripple')),
    connections: num(args, 'connections', num(args, 'subs', num(args, 'subscribers', 2000))),
    warm: num(args, 'warm', 100),
    settle: num(args, 'settle', 3),
    concurrency: num(args, 'concurrency', 50),
    steps: Math.max(1, num(args, 'steps', 4)),
    channels: Math.max(0, num(args, 'channels', 0)),
    gc: !flag(args, 'no-gc'),
    semiSpace: args['semi-space'] === undefined ? undefined : num(args, 'semi-space', 1),
    heapSnapshotDir: typeof args['heap-snapshot'] === 'string' ? (args['heap-snapshot'] as string) : flag(args, 'heap-snapshot') ? 'bench/results/heap' : undefined,
  };
}

export interface MemoryPoint {
  /** open after the warm-up ones */
  connections: number;
  rss: number;
  /** RSS less what V8 kept committed but free after the full GCs (NaN without --gc) */
  rssLessHeapFree: number;
  /** the V8 heap's used bytes after the full GCs (NaN without --gc) */
  heap: number;
  /** the server process's resident memory by kind of mapping (proc.ts procMemMap) */
  map: { brk: number; anon: number; file: number };
}

/** Least-squares slope of y over the points' connections. */
function slope(points: MemoryPoint[], y: (p: MemoryPoint) => number): number {
  if (points.length < 2) return NaN;
  const mx = points.reduce((a, p) => a + p.connections, 0) / points.length;
  const my = points.reduce((a, p) => a + y(p), 0) / points.length;
  let num = 0;
  let den = 0;
  for (const p of points) {
    num += (p.connections - mx) * (y(p) - my);
    den += (p.connections - mx) ** 2;
  }
  return den > 0 ? num / den : NaN;
}

export interface MemoryResult {
  scenario: 'memory';
  target: TargetName;
  describe: string;
  params: Record<string, unknown>;
  env: Record<string, unknown>;
  rssIdle: number;
  rssBefore: number;
  rssAfter: number;
  bytesPerConnection: number;
  /** the V8 heap's used bytes after the full GCs (with --no-gc or for a target without an inspector: NaN) */
  heapBefore: number;
  heapAfter: number;
  heapBytesPerConnection: number;
  /** the V8 heap's committed bytes at each reading (NaN as heapBefore) */
  heapTotalBefore: number;
  heapTotalAfter: number;
  /**
   * RSS growth per connection less the growth of what V8 keeps committed but free after the full GCs
   * (totalSize - usedSize): the live heap plus everything outside V8, without the pages a connection
   * burst leaves V8 holding, which differ from run to run by hundreds of bytes per connection.
   */
  rssLessHeapFreePerConnection: number;
  /** a reading after each of the `steps` parts of the connections */
  points: MemoryPoint[];
  /**
   * Bytes per connection as the least-squares slope over `points` (NaN with fewer than two): the cost of
   * one more connection once N/steps are open, without what the process had free before them.
   */
  slope: { rss: number; rssLessHeapFree: number };
  connect: { ok: number; failed: number; ms: number; perSec: number; genCpuPct: number; errors: string[] };
  server: { pid: number; affinity: string; cpuMsConnect: number; cpuUsPerConnection: number };
  stillOpen: number;
  /** CPU used by anything but the server and the generator while connecting, % of one core (noise check) */
  machine: { otherPctConnect: number };
  /** with --heap-snapshot: the V8 heap's growth per connection, by kind of object (memory-heap.ts) */
  heap?: { total: number; rows: HeapGrowth[]; files: [string, string] };
  ok: boolean;
  notes: string[];
}

/**
 * Settles, optionally forces a full GC in the server, then returns the median of a few VmRSS samples
 * and the V8 heap's used size (after the GC: the live objects alone, which RSS blurs with the pages V8
 * keeps, so it is the steadier figure for comparing two revisions).
 */
async function reading(o: MemoryOptions, target: Target): Promise<{ rss: number; heap: number; heapTotal: number }> {
  await sleep(o.settle * 1000);
  let usage: { used: number; total: number } | undefined;
  if (o.gc) {
    await target.collectGarbage();
    // With WORKERS the inspector is the primary's, whose heap holds no connection.
    if (o.rippleWorkers <= 1) usage = await target.heapUsage();
    await sleep(500);
  }
  return { rss: await sampleRss(target.pid), heap: usage?.used ?? NaN, heapTotal: usage?.total ?? NaN };
}

async function sampleRss(pid: number, n = 5, gapMs = 200): Promise<number> {
  const xs: number[] = [];
  for (let i = 0; i < n; i++) {
    xs.push(procMem(pid).rss);
    if (i < n - 1) await sleep(gapMs);
  }
  return median(xs);
}

export async function runMemory(o: MemoryOptions): Promise<MemoryResult> {
  const target = await startTarget(o.target, { serverCpus: o.pin.serverCpus, rippleRev: o.rippleRev, redis: o.redis, inspect: o.gc || o.heapSnapshotDir !== undefined, nodeFlags: o.semiSpace ? [`--max-semi-space-size=${o.semiSpace}`] : undefined, cpuProfDir: o.cpuProfDir, rippleWorkers: o.rippleWorkers });
  let gen: LoadGen | null = null;
  const notes: string[] = [];
  try {
    gen = await LoadGen.start(o.workers, false);
    const url = `ws://127.0.0.1:${target.port}/app/${benchApp.key}?protocol=7&client=js&version=8.4.0&flash=false`;
    const { rss: rssIdle } = await reading(o, target);
    if (o.warm > 0) {
      const w = await gen.connect({ url, total: o.warm, channelPrefix: 'bench-mem-', layout: 'each', key: benchApp.key, secret: benchApp.secret, concurrencyPerWorker: o.concurrency, timeoutMs: 30_000 });
      if (w.failed) notes.push(`${w.failed} warm-up connections failed: ${w.errors.join('; ')}`);
    }
    const { rss: rssBefore, heap: heapBefore, heapTotal: heapTotalBefore } = await reading(o, target);
    // After the RSS reading: a snapshot's own allocations would count as the connections'.
    const snapshots: [string, string] | undefined = o.heapSnapshotDir
      ? [join(o.heapSnapshotDir, `${target.pid}-before.heapsnapshot`), join(o.heapSnapshotDir, `${target.pid}-after.heapsnapshot`)]
      : undefined;
    if (snapshots) {
      mkdirSync(o.heapSnapshotDir!, { recursive: true });
      await target.heapSnapshot(snapshots[0]);
      notes.push('heap snapshots taken: the RSS growth includes what the first snapshot left allocated');
    }
    // The connections are opened in `steps` parts, with a reading after each: the slope over those readings
    // is what one more connection costs once some are open, without what the process already had free
    // (malloc's and V8's) at the "before" reading, which a first burst uses up at a different rate per server.
    const connect = { ok: 0, failed: 0, ms: 0, genCpuMs: 0, errors: [] as string[] };
    let cpuConnect = 0;
    let otherMs = 0;
    const points: MemoryPoint[] = [];
    let after = { rss: rssBefore, heap: heapBefore, heapTotal: heapTotalBefore };
    for (let step = 0, opened = 0; step < o.steps; step++) {
      const total = Math.round((o.connections * (step + 1)) / o.steps) - opened;
      const cpu0 = procCpuMs(target.pid);
      const mach0 = machineCpu();
      const part = await gen.connect({
        url,
        total,
        channelPrefix: 'bench-mem-',
        ...(o.channels > 0 ? { layout: 'groups' as const, groups: o.channels } : { layout: 'each' as const }),
        key: benchApp.key,
        secret: benchApp.secret,
        concurrencyPerWorker: o.concurrency,
        timeoutMs: 30_000,
        firstIndex: o.warm + opened,
      });
      const cpu = procCpuMs(target.pid) - cpu0;
      const mach1 = machineCpu();
      opened += total;
      cpuConnect += cpu;
      otherMs += Math.max(0, mach1.busyMs - mach0.busyMs - cpu - (part.genCpuPct / 100) * part.ms);
      connect.ok += part.ok;
      connect.failed += part.failed;
      connect.ms += part.ms;
      connect.genCpuMs += (part.genCpuPct / 100) * part.ms;
      if (connect.errors.length < 5) connect.errors.push(...part.errors.slice(0, 5 - connect.errors.length));
      after = await reading(o, target);
      points.push({ connections: connect.ok, rss: after.rss, rssLessHeapFree: after.rss - (after.heapTotal - after.heap), heap: after.heap, map: procMemMap(target.pid) });
    }
    const conn = { ...connect, perSec: connect.ok / (connect.ms / 1000), genCpuPct: (connect.genCpuMs / connect.ms) * 100 };
    const otherPctConnect = (otherMs / connect.ms) * 100;
    if (otherPctConnect > 25) notes.push(`other CPU load on the machine while connecting: ${otherPctConnect.toFixed(0)}% of a core (interference?)`);
    if (conn.genCpuPct > 85)
      notes.push(`generator used ${conn.genCpuPct.toFixed(0)}% of its core while connecting: conn/s is bounded by the generator`);
    if (conn.failed) notes.push(`${conn.failed} of ${o.connections} connections failed: ${conn.errors.join('; ')}`);
    const addresses = clientAddresses(url, o.warm + o.connections);
    if (addresses) notes.push(`connections spread over ${addresses.length} client addresses (${addresses.join(', ')}): one address has only the local port range towards one server port`);
    const { rss: rssAfter, heap: heapAfter, heapTotal: heapTotalAfter } = after;
    let heap: MemoryResult['heap'];
    if (snapshots && conn.ok) {
      await target.heapSnapshot(snapshots[1]);
      heap = { ...heapGrowth(snapshots[0], snapshots[1], conn.ok), files: snapshots };
    }
    const rep = await gen.report();
    if (rep.closedEarly) notes.push(`${rep.closedEarly} sockets closed by the server while idle: ${JSON.stringify(rep.closeCodes)}`);
    if (!o.pin.enabled) notes.push(`not pinned (${o.pin.note})`);
    if (!target.alive()) notes.push('server exited during the run');
    const stillOpen = rep.connections - rep.closedEarly;
    return {
      scenario: 'memory',
      target: o.target,
      describe: target.describe,
      params: { connections: o.connections, steps: o.steps, channels: o.channels, warm: o.warm, settle: o.settle, gc: o.gc, semiSpace: o.semiSpace, concurrency: o.concurrency, workers: o.workers, redis: o.redis },
      env: environment(o),
      rssIdle,
      rssBefore,
      rssAfter,
      bytesPerConnection: conn.ok ? (rssAfter - rssBefore) / conn.ok : NaN,
      heapBefore,
      heapAfter,
      heapBytesPerConnection: conn.ok ? (heapAfter - heapBefore) / conn.ok : NaN,
      heapTotalBefore,
      heapTotalAfter,
      rssLessHeapFreePerConnection: conn.ok ? (rssAfter - (heapTotalAfter - heapAfter) - (rssBefore - (heapTotalBefore - heapBefore))) / conn.ok : NaN,
      points,
      slope: { rss: slope(points, (p) => p.rss), rssLessHeapFree: slope(points, (p) => p.rssLessHeapFree) },
      connect: { ok: conn.ok, failed: conn.failed, ms: conn.ms, perSec: conn.perSec, genCpuPct: conn.genCpuPct, errors: conn.errors },
      server: {
        pid: target.pid,
        affinity: target.affinity,
        cpuMsConnect: cpuConnect,
        cpuUsPerConnection: conn.ok ? (cpuConnect * 1000) / conn.ok : NaN,
      },
      stillOpen,
      machine: { otherPctConnect },
      heap,
      ok: conn.failed === 0 && rep.closedEarly === 0 && target.alive(),
      notes,
    };
  } finally {
    if (gen) await gen.close();
    await target.stop();
  }
}

export function summarizeMemory(r: MemoryResult): string {
  const lines = [
    `memory → ${r.target}: ${r.describe}`,
    `  ${r.connect.ok}/${r.params.connections} idle subscribed connections (${r.params.channels ? `spread over ${r.params.channels} channels` : 'each its own channel'}, after ${r.params.warm} warm-up ones) ` +
      `in ${fmt.n(r.connect.ms)} ms = ${fmt.n(r.connect.perSec)} conn/s; server cpu ${fmt.n(r.server.cpuUsPerConnection, 0)} µs/connection, generator cpu ${fmt.n(r.connect.genCpuPct, 0)}%`,
    `  RSS idle ${fmt.bytes(r.rssIdle)}, before ${fmt.bytes(r.rssBefore)}, after ${fmt.bytes(r.rssAfter)} → ` +
      `${fmt.n(r.bytesPerConnection)} bytes (${fmt.bytes(r.bytesPerConnection)}) per connection` +
      (Number.isFinite(r.heapBytesPerConnection) ? `; V8 heap used ${fmt.bytes(r.heapBefore)} → ${fmt.bytes(r.heapAfter)}: ${fmt.n(r.heapBytesPerConnection)} bytes per connection` : ''),
    ...(Number.isFinite(r.rssLessHeapFreePerConnection)
      ? [`  V8 heap committed ${fmt.bytes(r.heapTotalBefore)} → ${fmt.bytes(r.heapTotalAfter)}; RSS less V8's committed-but-free bytes: ${fmt.n(r.rssLessHeapFreePerConnection)} bytes per connection`]
      : []),
    ...(r.points.length > 1
      ? [
          `  per connection as the slope over ${r.points.length} readings (${r.points.map((p) => fmt.n(p.connections)).join(', ')} connections): RSS ${fmt.n(r.slope.rss)} bytes` +
            (Number.isFinite(r.slope.rssLessHeapFree) ? `, RSS less V8's committed-but-free ${fmt.n(r.slope.rssLessHeapFree)} bytes` : ''),
        ]
      : []),
    `  readings: ${r.params.settle}s settle${r.params.gc ? ' + full GC through --inspect' : ''}, median of 5 VmRSS samples; ${String(r.env.pinning)}`,
  ];
  if (r.heap) lines.push(`  V8 heap growth per connection (${r.heap.files.join(', ')}):`, formatHeapGrowth(r.heap));
  for (const n of r.notes) lines.push(`  NOTE: ${n}`);
  return lines.join('\n');
}

if (isMain(import.meta.url)) {
  const o = memoryOptions(parseArgs());
  prepareGenerator(o);
  const r = await runMemory(o);
  console.log(JSON.stringify(r));
  console.log(summarizeMemory(r));
  if (o.save) saveResult('memory', r);
  process.exit(0);
}
