// Pub/sub capacity of the Redis layouts ripple can run on (issue 22), Redis alone (no ripple): three
// subscriber connections stand for three ripple nodes, each subscribed to every one of C channels;
// publishers send M messages spread over the channels as fast as a bounded window lets them; every
// message is delivered to the three. Layouts, run in paired rounds (each a fresh Redis):
//   single         one redis-server, PUBLISH/SUBSCRIBE (ripple's default)
//   cluster1-s     a one-primary Redis Cluster, SPUBLISH/SSUBSCRIBE, a shard channel per channel
//   cluster3-s     three primaries, SPUBLISH/SSUBSCRIBE per channel (ripple on Redis Cluster)
//   cluster3-c     three primaries, classic PUBLISH/SUBSCRIBE (what Soketi does on a cluster: every
//                  message crosses the cluster bus to every primary)
// Reported: deliveries/s (wall), and Redis CPU (user + sys of every redis-server, from INFO) per
// delivered message, in total and on the busiest primary. The capacity projection rests on the
// latter: a shard saturates at about 1 core / (its CPU per message it serves).
//
//   cluster3-p16   three primaries, SPUBLISH on 16 hash-tagged partitions (Centrifugo's way): a node
//                  subscribes the partitions of its channels and receives all of their traffic
// With `--interest third` each subscriber wants a third of the channels (interest routing matters).
//
// `--redis-cpu-cap F` caps every redis-server at F of a core (a cgroup v1 `cpu` group per server,
// cfs_quota = F × period; root and /sys/fs/cgroup/cpu needed): the servers, not the generator, are then
// the limit, so deliveries/s is each layout's pub/sub capacity at F of a core per shard (how it grows with
// the shards), on a 2-core machine that cannot saturate three uncapped shards and a generator at once. Each
// run reports how many of the busiest server's scheduler periods were throttled (the cap was binding).
//
//   node --import tsx bench/redis-cluster.ts [--rounds 3] [--channels 300] [--messages 60000] [--window 256]
//        [--interest all|third] [--layouts single,cluster1-s,cluster3-s,cluster3-c,cluster3-p16]
//        [--redis-cpu-cap 0.1]
import { mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { Cluster, Redis } from 'ioredis';
import { startRedis } from '../src/testing/harness.js';
import { startRedisCluster } from '../src/testing/redis-cluster.js';

const arg = (name: string, def: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : def;
};
const ROUNDS = arg('rounds', 3);
const CHANNELS = arg('channels', 300);
const MESSAGES = arg('messages', 60000);
const WINDOW = arg('window', 256);
const SUBSCRIBERS = 3;
/** Fraction of a core each redis-server may use (0: uncapped). */
const CPU_CAP = arg('redis-cpu-cap', 0);
const CGROUP_CPU = '/sys/fs/cgroup/cpu';
const payload = 'x'.repeat(100);

type Layout = 'single' | 'cluster1-s' | 'cluster3-s' | 'cluster3-c' | 'cluster3-p16';
/** `all`: every subscriber wants every channel; `third`: subscriber i wants the channels c with c % 3 = i. */
const INTEREST = process.argv.includes('--interest') ? process.argv[process.argv.indexOf('--interest') + 1] : 'all';
const PARTITIONS = 16;
interface Result {
  /** deliveries that never arrived (within 60 s of the last publish), over those due */
  lostShare: number;
  /** deliveries to a subscriber that does not want the message's channel (partitions) */
  unwantedShare: number;
  /** the most messages one redis-server handled, over the messages published */
  busiestHandledShare: number;
  deliveriesPerSec: number;
  cpuUsPerDelivery: number;
  busiestShareUsPerDelivery: number;
  /** with a CPU cap: the share of the busiest server's scheduler periods in which the cap throttled it */
  throttledShare?: number;
}

/** Puts each redis-server (found by its INFO process_id) in a cgroup of its own capped at CPU_CAP of a core. */
async function capCpu(ports: number[]): Promise<{ throttled: () => number[]; remove: () => void }> {
  const dirs: string[] = [];
  for (const p of ports) {
    const r = new Redis(p, '127.0.0.1');
    const pid = Number(/process_id:(\d+)/.exec(await r.info('server'))![1]);
    r.disconnect();
    const dir = `${CGROUP_CPU}/ripple-bench-${process.pid}-${p}`;
    mkdirSync(dir);
    dirs.push(dir);
    const period = Number(readFileSync(`${dir}/cpu.cfs_period_us`, 'utf8'));
    writeFileSync(`${dir}/cpu.cfs_quota_us`, String(Math.round(period * CPU_CAP)));
    writeFileSync(`${dir}/cgroup.procs`, String(pid));
  }
  const stat = (dir: string) => {
    const t = readFileSync(`${dir}/cpu.stat`, 'utf8');
    const v = (k: string) => Number(new RegExp(`${k} (\\d+)`).exec(t)?.[1] ?? 0);
    return v('nr_throttled') / Math.max(1, v('nr_periods'));
  };
  return {
    throttled: () => dirs.map(stat),
    // The group can go once its server has exited (its tasks are gone).
    remove: () => dirs.forEach((d) => rmdirSync(d)),
  };
}

/**
 * Messages each redis-server handled: PUBLISH/SPUBLISH calls from clients plus publishes received over
 * the cluster bus (classic PUBLISH on a cluster reaches every node that way).
 */
async function handledOf(ports: number[]): Promise<number[]> {
  return Promise.all(
    ports.map(async (p) => {
      const r = new Redis(p, '127.0.0.1');
      try {
        const stats = await r.info('commandstats');
        const calls = (cmd: string) => Number(new RegExp(`cmdstat_${cmd}:calls=(\\d+)`).exec(stats)?.[1] ?? 0);
        let bus = 0;
        if (ports.length > 1 || (await r.info('cluster')).includes('cluster_enabled:1')) {
          const ci = (await r.call('CLUSTER', 'INFO')) as string;
          bus = Number(/cluster_stats_messages_publish_received:(\d+)/.exec(ci)?.[1] ?? 0);
        }
        return calls('publish') + calls('spublish') + bus;
      } finally {
        r.disconnect();
      }
    }),
  );
}

async function cpuOf(ports: number[]): Promise<number[]> {
  return Promise.all(
    ports.map(async (p) => {
      const r = new Redis(p, '127.0.0.1', { lazyConnect: false });
      try {
        const info = await r.info('cpu');
        const v = (k: string) => Number(new RegExp(`${k}:([\\d.]+)`).exec(info)![1]);
        return (v('used_cpu_user') + v('used_cpu_sys')) * 1e6;
      } finally {
        r.disconnect();
      }
    }),
  );
}

async function runOnce(layout: Layout): Promise<Result> {
  const partitioned = layout.endsWith('-p16');
  const sharded = layout.endsWith('-s') || partitioned;
  let ports: number[];
  let stop: () => Promise<void>;
  let client: () => Redis;
  if (layout === 'single') {
    const r = await startRedis();
    ports = [r.port];
    stop = r.stop;
    client = () => new Redis(r.port, '127.0.0.1');
  } else {
    const c = await startRedisCluster({ primaries: layout.startsWith('cluster3') ? 3 : 1, replicas: 0 });
    ports = c.ports;
    stop = c.stop;
    const seeds = c.ports.map((port) => ({ host: '127.0.0.1', port }));
    client = () => new Cluster(seeds, { shardedSubscribers: sharded, redisOptions: { lazyConnect: false } }) as unknown as Redis;
  }
  // A channel's pub/sub name: its own (per channel), or one of PARTITIONS hash-tagged partitions.
  const channels = Array.from({ length: CHANNELS }, (_, i) =>
    partitioned ? `ripple:ch:{p${i % PARTITIONS}}` : sharded ? `ripple:ch:{app:chan-${i}}` : `ripple:ch:app:chan-${i}`,
  );
  const cap = CPU_CAP > 0 ? await capCpu(ports) : undefined;
  const wants = (sub: number, c: number) => INTEREST === 'all' || c % SUBSCRIBERS === sub;
  const subs = Array.from({ length: SUBSCRIBERS }, client);
  const pub = client();
  let delivered = 0;
  let lastDelivery = 0n;
  let unwanted = 0;
  // A Cluster client takes commands once it has read the slot map; its sharded subscribers a moment later.
  await Promise.all([...subs, pub].map((c) => (c.status === 'ready' ? undefined : new Promise((r) => c.once('ready', r)))));
  await new Promise((r) => setTimeout(r, 500));
  const names: Set<string>[] = [];
  for (const [i, s] of subs.entries()) {
    s.on(sharded ? 'smessage' : 'message', (_: string, m: string) => {
      delivered++;
      lastDelivery = process.hrtime.bigint();
      if (!wants(i, Number(m.slice(0, m.indexOf('|'))))) unwanted++;
    });
    names.push(new Set(channels.filter((_, c) => wants(i, c))));
    for (const ch of names[i]) await withTimeout(sharded ? s.ssubscribe(ch) : s.subscribe(ch), `${layout}: subscribe ${ch}`);
  }
  await pub.ping();
  let expected = 0;
  for (let m = 0; m < MESSAGES; m++) for (const n of names) if (n.has(channels[m % CHANNELS])) expected++;
  const cpu0 = await cpuOf(ports);
  const t0 = process.hrtime.bigint();
  lastDelivery = t0;
  let sent = 0;
  let inflight = 0;
  await new Promise<void>((resolve, reject) => {
    const pump = () => {
      while (inflight < WINDOW && sent < MESSAGES) {
        const c = sent % CHANNELS;
        const ch = channels[c];
        const message = `${c}|${payload}`;
        sent++;
        inflight++;
        (sharded ? pub.spublish(ch, message) : pub.publish(ch, message)).then(() => {
          inflight--;
          pump();
        }, reject);
      }
      if (sent >= MESSAGES && inflight === 0) resolve();
    };
    pump();
  });
  // Done when all are in, or nothing has come for 3 s (a layout that drops deliveries), at most 60 s.
  const deadline = Date.now() + 60_000;
  while (delivered < expected && Date.now() < deadline && Number(process.hrtime.bigint() - lastDelivery) < 3e9) await new Promise((r) => setTimeout(r, 5));
  const secs = Number(lastDelivery - t0) / 1e9;
  const cpu1 = await cpuOf(ports);
  const used = cpu1.map((c, i) => c - cpu0[i]);
  const handled = await handledOf(ports);
  const throttled = cap?.throttled();
  for (const c of [...subs, pub]) c.disconnect();
  await stop();
  cap?.remove();
  // Not a failure of the run: a capped classic-PUBLISH cluster drops deliveries (the cluster bus and the
  // subscribers' output buffers overflow), and that is part of what the layout does at saturation.
  return {
    lostShare: 1 - delivered / expected,
    unwantedShare: unwanted / delivered,
    busiestHandledShare: Math.max(...handled) / MESSAGES,
    deliveriesPerSec: delivered / secs,
    cpuUsPerDelivery: used.reduce((a, b) => a + b, 0) / delivered,
    busiestShareUsPerDelivery: Math.max(...used) / delivered,
    throttledShare: throttled && throttled[used.indexOf(Math.max(...used))],
  };
}

function withTimeout<T>(p: Promise<T>, what: string, ms = 10_000): Promise<T> {
  let t: NodeJS.Timeout;
  return Promise.race([p, new Promise<T>((_, reject) => (t = setTimeout(() => reject(new Error(`timed out: ${what}`)), ms)))]).finally(() => clearTimeout(t));
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main() {
  const layouts: Layout[] = (process.argv.includes('--layouts') ? process.argv[process.argv.indexOf('--layouts') + 1].split(',') : ['single', 'cluster1-s', 'cluster3-s', 'cluster3-c']) as Layout[];
  const results = new Map<Layout, Result[]>(layouts.map((l) => [l, []]));
  for (let r = 0; r < ROUNDS; r++) {
    const order = r % 2 ? [...layouts].reverse() : layouts;
    for (const l of order) {
      const res = await runOnce(l);
      results.get(l)!.push(res);
      console.error(
        `round ${r + 1} ${l}: ${Math.round(res.deliveriesPerSec)} deliveries/s, ${res.cpuUsPerDelivery.toFixed(2)} µs Redis CPU/delivery (busiest ${res.busiestShareUsPerDelivery.toFixed(2)}), busiest server handled ${res.busiestHandledShare.toFixed(2)} of the messages, lost ${(res.lostShare * 100).toFixed(2)} %${res.throttledShare === undefined ? '' : `, throttled in ${(res.throttledShare * 100).toFixed(0)} % of its periods`}`,
      );
    }
  }
  console.log(`channels ${CHANNELS}, messages ${MESSAGES}, ${SUBSCRIBERS} subscribers wanting ${INTEREST === 'all' ? 'every channel' : 'a third of the channels each'}, window ${WINDOW}, rounds ${ROUNDS} (medians)${CPU_CAP > 0 ? `, every redis-server capped at ${CPU_CAP} of a core` : ''}`);
  console.log('| layout | deliveries/s | Redis CPU µs / delivery (all) | busiest redis-server µs / delivery | messages the busiest redis-server handled | deliveries not wanted | deliveries lost |');
  console.log('|---|---:|---:|---:|---:|---:|---:|');
  for (const l of layouts) {
    const rs = results.get(l)!;
    console.log(
      `| ${l} | ${Math.round(median(rs.map((x) => x.deliveriesPerSec))).toLocaleString('en')} | ${median(rs.map((x) => x.cpuUsPerDelivery)).toFixed(2)} | ${median(rs.map((x) => x.busiestShareUsPerDelivery)).toFixed(2)} | ${(median(rs.map((x) => x.busiestHandledShare)) * 100).toFixed(0)} % | ${(median(rs.map((x) => x.unwantedShare)) * 100).toFixed(0)} % | ${(median(rs.map((x) => x.lostShare)) * 100).toFixed(2)} % |`,
    );
  }
  process.exit(0);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
