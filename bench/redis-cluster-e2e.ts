// ripple end to end over one Redis and over a three-primary Redis Cluster (issue 22), at a fixed offered
// load: 1, 2 or 3 ripple nodes (the work tree, src/testing/harness.ts), `--clients` WebSocket clients per
// node each subscribed to every one of `--channels` channels, and REST batches (10 events, to the nodes
// in turn) at `--rate` events/s for `--seconds`. Every event reaches every client. Reported per layout:
// deliveries/s, delivery latency p50/p99 (send to receipt, same clock), the share delivered, and Redis
// CPU (user + sys of every redis-server) per delivered event. Layouts alternate per round (paired).
//
//   node --import tsx bench/redis-cluster-e2e.ts [--rounds 2] [--channels 20] [--clients 10] [--rate 300] [--seconds 8]
import { Redis } from 'ioredis';
import WebSocket from 'ws';
import { startNode, startRedis, type NodeHandle } from '../src/testing/harness.js';
import { startRedisCluster } from '../src/testing/redis-cluster.js';
import { rest } from '../src/testing/sign-rest.js';

const arg = (name: string, def: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : def;
};
const ROUNDS = arg('rounds', 2);
const CHANNELS = arg('channels', 20);
const CLIENTS = arg('clients', 10);
const RATE = arg('rate', 300);
const SECONDS = arg('seconds', 8);
const app = { id: 'e2e', key: 'e2e-key', secret: 'e2e-secret' };

interface Result {
  deliveriesPerSec: number;
  p50: number;
  p99: number;
  deliveredShare: number;
  redisCpuUsPerDelivery: number;
}

async function redisCpu(ports: number[]): Promise<number> {
  let total = 0;
  for (const p of ports) {
    const r = new Redis(p, '127.0.0.1');
    const info = await r.info('cpu');
    r.disconnect();
    const v = (k: string) => Number(new RegExp(`${k}:([\\d.]+)`).exec(info)![1]);
    total += (v('used_cpu_user') + v('used_cpu_sys')) * 1e6;
  }
  return total;
}

function client(port: number, latencies: number[], counter: { n: number }): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/app/${app.key}?protocol=7&client=bench&version=1`);
    ws.on('error', reject);
    ws.on('message', (raw) => {
      const f = JSON.parse(raw.toString()) as { event: string; data?: string };
      if (f.event === 'pusher:connection_established') {
        for (let c = 0; c < CHANNELS; c++) ws.send(JSON.stringify({ event: 'pusher:subscribe', data: { channel: `bench-${c}` } }));
        resolve(ws);
      } else if (f.event === 'tick') {
        counter.n++;
        latencies.push(Date.now() - Number(f.data));
      }
    });
  });
}

async function runOnce(layout: 'single' | 'cluster3', nodes: number): Promise<Result> {
  let ports: number[];
  let stop: () => Promise<void>;
  let env: Record<string, string>;
  if (layout === 'single') {
    const r = await startRedis();
    ports = [r.port];
    stop = r.stop;
    env = { REDIS_URL: r.url };
  } else {
    const c = await startRedisCluster({ primaries: 3, replicas: 0 });
    ports = c.ports;
    stop = c.stop;
    env = { REDIS_CLUSTER_NODES: c.seeds.join(',') };
  }
  const config = { apps: [{ ...app, maxBackendEventsPerSecond: -1 }] };
  const started: NodeHandle[] = await Promise.all(Array.from({ length: nodes }, (_, i) => startNode({ env: { ...env, NODE_ID: `e2e-${i}` }, config })));
  const latencies: number[] = [];
  const counter = { n: 0 };
  const sockets: WebSocket[] = [];
  for (const n of started) for (let i = 0; i < CLIENTS; i++) sockets.push(await client(n.port, latencies, counter));
  await new Promise((r) => setTimeout(r, 1500)); // subscriptions in force on every node
  const cpu0 = await redisCpu(ports);
  const t0 = Date.now();
  let sent = 0;
  const total = RATE * SECONDS;
  for (let b = 0; sent < total; b++) {
    const batch = Array.from({ length: 10 }, (_, k) => ({ name: 'tick', channel: `bench-${(sent + k) % CHANNELS}`, data: String(Date.now()) }));
    const n = started[b % nodes];
    await rest(n.url, app, 'POST', `/apps/${app.id}/batch_events`, { batch });
    sent += batch.length;
    const due = t0 + (sent * 1000) / RATE;
    if (due > Date.now()) await new Promise((r) => setTimeout(r, due - Date.now()));
  }
  const expected = (sent / CHANNELS) * CHANNELS * sockets.length; // every event to every client
  const deadline = Date.now() + 10_000;
  while (counter.n < expected && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  const secs = (Date.now() - t0) / 1000;
  const cpu1 = await redisCpu(ports);
  for (const s of sockets) s.terminate();
  await Promise.all(started.map((n) => n.kill()));
  await stop();
  latencies.sort((a, b) => a - b);
  return {
    deliveriesPerSec: counter.n / secs,
    p50: latencies[Math.floor(latencies.length * 0.5)] ?? NaN,
    p99: latencies[Math.floor(latencies.length * 0.99)] ?? NaN,
    deliveredShare: counter.n / expected,
    redisCpuUsPerDelivery: (cpu1 - cpu0) / counter.n,
  };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main() {
  const runs: ['single' | 'cluster3', number][] = [];
  for (const n of [1, 2, 3]) runs.push(['single', n], ['cluster3', n]);
  const results = new Map<string, Result[]>();
  for (let r = 0; r < ROUNDS; r++) {
    for (const [layout, n] of r % 2 ? [...runs].reverse() : runs) {
      const res = await runOnce(layout, n);
      const key = `${layout} × ${n} node${n > 1 ? 's' : ''}`;
      results.set(key, [...(results.get(key) ?? []), res]);
      console.error(`round ${r + 1} ${key}: ${Math.round(res.deliveriesPerSec)} deliveries/s, p50 ${res.p50} ms, p99 ${res.p99} ms, delivered ${(res.deliveredShare * 100).toFixed(1)} %, Redis ${res.redisCpuUsPerDelivery.toFixed(2)} µs/delivery`);
    }
  }
  console.log(`channels ${CHANNELS}, ${CLIENTS} clients per node each on every channel, ${RATE} events/s for ${SECONDS} s, rounds ${ROUNDS} (medians)`);
  console.log('| layout | deliveries/s | p50 ms | p99 ms | delivered | Redis CPU µs / delivery |');
  console.log('|---|---:|---:|---:|---:|---:|');
  for (const [key, rs] of results) {
    console.log(
      `| ${key} | ${Math.round(median(rs.map((x) => x.deliveriesPerSec))).toLocaleString('en')} | ${median(rs.map((x) => x.p50))} | ${median(rs.map((x) => x.p99))} | ${(median(rs.map((x) => x.deliveredShare)) * 100).toFixed(1)} % | ${median(rs.map((x) => x.redisCpuUsPerDelivery)).toFixed(2)} |`,
    );
  }
  process.exit(0);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
