// The presence store's cost per step (issue 22, point 2): one Redis with presence/redis.ts (each step
// one script) against a three-primary Redis Cluster with presence/redis-cluster.ts (each channel's
// state in its slot: the share written around a channel script, webhooks moved in a second step).
// The stores run in this process against fresh redis-servers (no ripple node, no sockets): per step
// the round trips (commands the store's client sent, counted at its sendCommand: the store pipelines
// nothing), the commands Redis ran inside them (INFO commandstats, scripts' calls included), and the
// Redis time they took (commandstats usec of the commands sent: scripts with their calls; not the
// cluster's own chatter, which grows with wall time); and where the state keys ended up (DBSIZE of
// each primary). These are load-independent enough to compare. Steps, C channels:
//   subscribe     C public channels, one socket each (addSubscription), then unsubscribed
//   presence      C presence channels, M members each joining (subscribePresence) then leaving
// With `--webhooks`, every transition is routed to one webhook queue (the cluster store then moves
// them to the stream: LRANGE, moveWebhooks, trimPending).
//
//   node --import tsx bench/presence-cluster.ts [--channels 300] [--members 10] [--rounds 3] [--webhooks]
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { RedisClusterPresenceStore } from '../src/presence/redis-cluster.js';
import { RedisPresenceStore } from '../src/presence/redis.js';
import type { PresenceStore, TransitionRouter } from '../src/presence/store.js';
import { commandClient } from '../src/redis/clients.js';
import { RedisKeys } from '../src/redis/keys.js';
import { startRedis } from '../src/testing/harness.js';
import { startRedisCluster } from '../src/testing/redis-cluster.js';
import { flag, num, parseArgs } from './lib/args.js';

const args = parseArgs();
const CHANNELS = num(args, 'channels', 300);
const MEMBERS = num(args, 'members', 10);
const ROUNDS = num(args, 'rounds', 3);
const WEBHOOKS = flag(args, 'webhooks');
const APP = 'bench-app';

const routes: TransitionRouter = WEBHOOKS
  ? { any: true, routes: () => ({ occupied: ['q'], vacated: ['q'], added: ['q'], removed: ['q'] }) }
  : { any: false, routes: () => undefined };

interface Stats {
  calls: Record<string, number>;
  /** commandstats usec per command, per server */
  usec: Record<string, number>[];
  /** round trips the store's client sent, by command */
  sent: Record<string, number>;
}

const sent: Record<string, number> = {};

async function statsOf(ports: number[]): Promise<Stats> {
  const calls: Record<string, number> = {};
  const usec: Record<string, number>[] = [];
  for (const p of ports) {
    const r = new Redis(p, '127.0.0.1');
    const u: Record<string, number> = {};
    try {
      for (const m of (await r.info('commandstats')).matchAll(/cmdstat_([a-z|]+):calls=(\d+),usec=(\d+)/g)) {
        calls[m[1]] = (calls[m[1]] ?? 0) + Number(m[2]);
        u[m[1]] = Number(m[3]);
      }
    } finally {
      r.disconnect();
    }
    usec.push(u);
  }
  return { calls, usec, sent: { ...sent } };
}

/** What the store sent and Redis did between two stats, per step. */
function perStep(a: Stats, b: Stats, steps: number) {
  const per = (x: number) => +(x / steps).toFixed(2);
  const roundTrips: Record<string, number> = {};
  let trips = 0;
  for (const [k, v] of Object.entries(b.sent)) {
    const d = v - (a.sent[k] ?? 0);
    if (d > 0) {
      roundTrips[k] = per(d);
      trips += d;
    }
  }
  let commands = 0;
  for (const [k, v] of Object.entries(b.calls)) {
    // the stats reads themselves and the client's own chatter (CLUSTER SLOTS, INFO) are not the store's
    if (!/^(info|client|cluster|hello|ping|select|command|dbsize)/.test(k)) commands += v - (a.calls[k] ?? 0);
  }
  // Redis time of what was sent (a script's usec includes its calls).
  const us = b.usec.map((u, i) => Object.keys(roundTrips).reduce((t, k) => t + (u[k] ?? 0) - (a.usec[i][k] ?? 0), 0));
  return { roundTrips: per(trips), byCommand: roundTrips, redisCommands: per(commands), redisUs: per(us.reduce((x, y) => x + y, 0)), busiestUs: per(Math.max(...us)) };
}

async function runOnce(layout: 'single' | 'cluster3') {
  let ports: number[];
  let stop: () => Promise<void>;
  let target: { url?: string; clusterNodes?: string[] };
  if (layout === 'single') {
    const r = await startRedis();
    ports = [Number(new URL(r.url).port)];
    stop = () => r.stop();
    target = { url: r.url };
  } else {
    const c = await startRedisCluster({ primaries: 3, replicas: 0 });
    ports = c.ports;
    stop = () => c.stop();
    target = { clusterNodes: c.seeds };
  }
  const keys = new RedisKeys('bench', { cluster: layout !== 'single' });
  const redis = commandClient(target, 'bench');
  await new Promise<void>((r) => (redis.status === 'ready' ? r() : redis.once('ready', () => r())));
  // Count what the store sends (a Cluster client sends through its nodes' sendCommand: count there once).
  const send = redis.sendCommand.bind(redis);
  redis.sendCommand = ((cmd: { name: string }, ...rest: unknown[]) => {
    sent[cmd.name] = (sent[cmd.name] ?? 0) + 1;
    return (send as (...a: unknown[]) => unknown)(cmd, ...rest);
  }) as typeof redis.sendCommand;
  const o = { redis, keys, nodeId: 'n1', log: pino({ level: 'silent' }), lease: { leaseMs: 10_000, rejoinSoon: () => {} }, routes };
  const store: PresenceStore & { rejoin(): Promise<void> } = layout === 'single' ? new RedisPresenceStore(o) : new RedisClusterPresenceStore(o);
  await store.rejoin();
  // Warm-up: every script loaded on every primary (the first call of each is a NOSCRIPT and an EVAL).
  for (let i = 0; i < 30; i++) {
    await store.addSubscription(APP, `warm-${i}`);
    await store.subscribePresence(APP, `presence-warm-${i}`, 's', { userId: 'u', userInfo: null }, 100);
    await store.unsubscribePresence(APP, `presence-warm-${i}`, 's', 'u');
    await store.removeSubscription(APP, `warm-${i}`);
  }
  await new Promise((r) => setTimeout(r, 200));

  const s0 = await statsOf(ports);
  const t0 = performance.now();
  await Promise.all(Array.from({ length: CHANNELS }, (_, i) => store.addSubscription(APP, `room-${i}`)));
  const subscribeAllMs = +(performance.now() - t0).toFixed(1);
  const s1 = await statsOf(ports);
  const spread = await Promise.all(
    ports.map(async (p) => {
      const r = new Redis(p, '127.0.0.1');
      try {
        return await r.dbsize();
      } finally {
        r.disconnect();
      }
    }),
  );
  await Promise.all(Array.from({ length: CHANNELS }, (_, i) => store.removeSubscription(APP, `room-${i}`)));
  const s2 = await statsOf(ports);
  const joins: Promise<unknown>[] = [];
  for (let m = 0; m < MEMBERS; m++) for (let i = 0; i < CHANNELS; i++) joins.push(store.subscribePresence(APP, `presence-${i}`, `s${m}`, { userId: `u${m}`, userInfo: { n: m } }, 100));
  await Promise.all(joins);
  const s3 = await statsOf(ports);
  const leaves: Promise<unknown>[] = [];
  for (let m = 0; m < MEMBERS; m++) for (let i = 0; i < CHANNELS; i++) leaves.push(store.unsubscribePresence(APP, `presence-${i}`, `s${m}`, `u${m}`));
  await Promise.all(leaves);
  await new Promise((r) => setTimeout(r, 300));
  const s4 = await statsOf(ports);
  redis.disconnect();
  await stop();
  return {
    subscribe: perStep(s0, s1, CHANNELS),
    unsubscribe: perStep(s1, s2, CHANNELS),
    presenceJoin: perStep(s2, s3, CHANNELS * MEMBERS),
    presenceLeave: perStep(s3, s4, CHANNELS * MEMBERS),
    keysPerServerWithChannelsSubscribed: spread,
    /** wall time of the C subscribes at once (noisy: the machine is shared) */
    subscribeAllMs,
  };
}

async function main() {
  const out: Record<string, unknown[]> = { single: [], cluster3: [] };
  for (let r = 0; r < ROUNDS; r++) {
    for (const layout of ['single', 'cluster3'] as const) {
      const res = await runOnce(layout);
      out[layout].push(res);
      console.log(JSON.stringify({ round: r, layout, channels: CHANNELS, members: MEMBERS, webhooks: WEBHOOKS, ...res }));
    }
  }
  // Medians of the per-step figures.
  const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  console.log('| layout | step | round trips | Redis commands | Redis µs (all servers) | busiest server µs |');
  console.log('| --- | --- | --- | --- | --- | --- |');
  for (const layout of ['single', 'cluster3'] as const) {
    for (const step of ['subscribe', 'unsubscribe', 'presenceJoin', 'presenceLeave'] as const) {
      const rows = out[layout].map((r) => (r as Record<string, ReturnType<typeof perStep>>)[step]);
      console.log(`| ${layout} | ${step} | ${med(rows.map((x) => x.roundTrips))} | ${med(rows.map((x) => x.redisCommands))} | ${med(rows.map((x) => x.redisUs))} | ${med(rows.map((x) => x.busiestUs))} |`);
    }
  }
}

await main();
