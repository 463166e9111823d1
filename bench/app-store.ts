// Apps from a database against apps from the config, paired in one run (bench/README.md, "app store"):
//   1. connections/s: N subscribed connections of the bench app, static store vs PostgreSQL store,
//      alternately (static, database, database, static, ...), each run on a fresh server;
//   2. a cold start: a fresh node with the PostgreSQL store, then 1,000 connections for 1,000 distinct
//      apps at once (every one a lookup the node has never made);
//   3. the change detector's cost: the fingerprint query and a full reload, on PostgreSQL and MariaDB
//      tables of 1,000 to 10,000 rows.
// Run: node --import tsx bench/app-store.ts [--rounds 5] [--connections 5000] [--burst 1000]
// Needs the machine's PostgreSQL (127.0.0.1:5432, trust) and MariaDB (127.0.0.1:3306, root); creates
// and drops its own databases.
import { randomBytes } from 'node:crypto';
import mysql from 'mysql2/promise';
import pg from 'pg';
import pino from 'pino';
import WebSocket from 'ws';
import { parseArgs, num, flag } from './lib/args.js';
import { commonOptions, environment, prepareGenerator, saveResult, fmt } from './lib/common.js';
import { LoadGen } from './lib/loadgen.js';
import { median } from './lib/hist.js';
import { machineCpu, procCpuMs, sleep, waitQuiet } from './lib/proc.js';
import { benchApp, startTarget } from './lib/targets.js';
import { CachedAppStore } from '../src/apps/cached-store.js';
import { mysqlClient, mysqlDialect } from '../src/apps/mysql.js';
import { postgresClient, postgresDialect } from '../src/apps/postgres.js';
import { RowMapping } from '../src/apps/row-mapping.js';
import { SqlAppSource, type SqlClient, type SqlDialect } from '../src/apps/sql-source.js';
import { AppStoreSchema } from '../src/config/schema.js';

const args = parseArgs(process.argv.slice(2));
const common = commonOptions(args);
const rounds = num(args, 'rounds', 5);
const connections = num(args, 'connections', 5000);
const burst = num(args, 'burst', 1000);
const concurrency = num(args, 'concurrency', 50);
const sizes = [1000, 5000, 10_000];

type Db = { driver: 'postgres' | 'mysql'; name: string; sql(text: string, params?: unknown[]): Promise<unknown>; drop(): Promise<void> };

async function createDb(driver: 'postgres' | 'mysql'): Promise<Db> {
  const name = `ripple_bench_${randomBytes(5).toString('hex')}`;
  if (driver === 'postgres') {
    const admin = new pg.Client({ host: '127.0.0.1', user: 'postgres', database: 'postgres' });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${name}`);
    await admin.end();
    const pool = new pg.Pool({ host: '127.0.0.1', user: 'postgres', database: name, max: 2 });
    return {
      driver,
      name,
      sql: (text, params) => pool.query(text, params as unknown[]),
      async drop() {
        await pool.end();
        const c = new pg.Client({ host: '127.0.0.1', user: 'postgres', database: 'postgres' });
        await c.connect();
        await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
        await c.end();
      },
    };
  }
  const admin = await mysql.createConnection({ host: '127.0.0.1', user: 'root' });
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const pool = mysql.createPool({ host: '127.0.0.1', user: 'root', database: name, connectionLimit: 2 });
  return {
    driver,
    name,
    sql: (text, params) => pool.query(text, params),
    async drop() {
      await pool.end();
      const c = await mysql.createConnection({ host: '127.0.0.1', user: 'root' });
      await c.query(`DROP DATABASE IF EXISTS ${name}`);
      await c.end();
    },
  };
}

/** Soketi's layout; `count` apps app-<i> / key-<i> besides the bench app. */
async function fillApps(db: Db, count: number): Promise<void> {
  const q = db.driver === 'postgres' ? '"' : '`';
  await db.sql(`DROP TABLE IF EXISTS apps`);
  await db.sql(
    `CREATE TABLE apps (id varchar(255) PRIMARY KEY, ${q}key${q} varchar(255) NOT NULL, secret varchar(255) NOT NULL, max_connections integer NOT NULL, ` +
      'enable_client_messages smallint NOT NULL, enabled smallint NOT NULL, max_backend_events_per_sec integer NOT NULL, max_client_events_per_sec integer NOT NULL, ' +
      `max_read_req_per_sec integer NOT NULL, webhooks ${db.driver === 'postgres' ? 'json' : 'json'}, max_presence_members_per_channel integer)`,
  );
  await db.sql(`CREATE INDEX apps_key ON apps (${q}key${q})`);
  const rows = [[benchApp.id, benchApp.key, benchApp.secret], ...Array.from({ length: count }, (_, i) => [`app-${i}`, `key-${i}`, `secret-${i}`])];
  for (let i = 0; i < rows.length; i += 500) {
    const chunk = rows.slice(i, i + 500);
    const values = chunk.map((r) => `('${r[0]}', '${r[1]}', '${r[2]}', -1, 1, 1, -1, -1, -1, '[]', 100)`).join(', ');
    await db.sql(`INSERT INTO apps VALUES ${values}`);
  }
}

function storeEnv(db: Db): Record<string, string> {
  return { APP_STORE_DRIVER: db.driver, APP_STORE_HOST: '127.0.0.1', APP_STORE_USER: db.driver === 'postgres' ? 'postgres' : 'root', APP_STORE_DATABASE: db.name };
}

interface ConnectRun {
  store: 'static' | 'database';
  perSec: number;
  cpuUsPerConnection: number;
  failed: number;
  otherPct: number;
}

async function connectRun(store: 'static' | 'database', db: Db): Promise<ConnectRun> {
  await waitQuiet(20_000);
  const target = await startTarget('ripple', { serverCpus: common.pin.serverCpus, rippleRev: common.rippleRev, env: store === 'database' ? storeEnv(db) : undefined });
  const gen = await LoadGen.start(common.workers, false);
  try {
    const url = `ws://127.0.0.1:${target.port}/app/${benchApp.key}?protocol=7&client=js&version=8.4.0&flash=false`;
    const opts = { url, channelPrefix: 'bench-as-', layout: 'each' as const, key: benchApp.key, secret: benchApp.secret, concurrencyPerWorker: concurrency, timeoutMs: 30_000 };
    // warm: the database store loads the bench app here (one lookup), as a running node would have
    await gen.connect({ ...opts, total: 100 });
    await sleep(500);
    const cpu0 = procCpuMs(target.pid);
    const machine0 = machineCpu();
    const conn = await gen.connect({ ...opts, total: connections, firstIndex: 100 });
    const cpu = procCpuMs(target.pid) - cpu0;
    // CPU used by anything but the server and the generator meanwhile, % of a core: the noise check
    const otherPct = Math.max(0, ((machineCpu().busyMs - machine0.busyMs - cpu) / conn.ms) * 100 - conn.genCpuPct);
    return { store, perSec: conn.perSec, cpuUsPerConnection: (cpu * 1000) / Math.max(1, conn.ok), failed: conn.failed, otherPct };
  } finally {
    await gen.close();
    await target.stop();
  }
}

interface BurstRun {
  ms: number;
  ok: number;
  refused: Record<string, number>;
  p50Ms: number;
  p99Ms: number;
  lookups: number;
}

/** A fresh node, then `burst` connections for as many distinct apps, all opened at once. */
async function burstRun(db: Db): Promise<BurstRun> {
  await waitQuiet(20_000);
  const target = await startTarget('ripple', { serverCpus: common.pin.serverCpus, rippleRev: common.rippleRev, env: storeEnv(db) });
  const sockets: WebSocket[] = [];
  try {
    const t0 = performance.now();
    const times: number[] = [];
    const refused: Record<string, number> = {};
    await Promise.all(
      Array.from(
        { length: burst },
        (_, i) =>
          new Promise<void>((resolve) => {
            const started = performance.now();
            const ws = new WebSocket(`ws://127.0.0.1:${target.port}/app/key-${i}?protocol=7&client=js&version=8.4.0`);
            sockets.push(ws);
            ws.on('message', (m) => {
              const f = JSON.parse(String(m)) as { event: string; data: unknown };
              if (f.event === 'pusher:connection_established') times.push(performance.now() - started);
              else if (f.event === 'pusher:error') {
                const code = String((f.data as { code?: number })?.code);
                refused[code] = (refused[code] ?? 0) + 1;
              }
              resolve();
            });
            ws.on('error', () => {
              refused.error = (refused.error ?? 0) + 1;
              resolve();
            });
          }),
      ),
    );
    const ms = performance.now() - t0;
    const metrics = await (await fetch(`http://127.0.0.1:${target.port}/metrics`)).text();
    const lookups = Number(/^ripple_app_store_lookups_total\{result="answered"\} (\d+)/m.exec(metrics)?.[1] ?? NaN);
    times.sort((a, b) => a - b);
    return { ms, ok: times.length, refused, p50Ms: times[Math.floor(times.length * 0.5)] ?? NaN, p99Ms: times[Math.floor(times.length * 0.99)] ?? NaN, lookups };
  } finally {
    for (const ws of sockets) ws.terminate();
    await target.stop();
  }
}

interface DetectorRun {
  driver: string;
  rows: number;
  fingerprintMs: number;
  reloadMs: number;
}

/** The change detector's two queries, timed in this process against a table of `rows` apps. */
async function detectorRun(db: Db, rows: number): Promise<DetectorRun> {
  await fillApps(db, rows - 1);
  const settings = AppStoreSchema.parse({ driver: db.driver, user: db.driver === 'postgres' ? 'postgres' : 'root', database: db.name, poolSize: 2 });
  const client: SqlClient = db.driver === 'postgres' ? postgresClient(settings, () => undefined) : mysqlClient(settings);
  const dialect: SqlDialect = db.driver === 'postgres' ? postgresDialect : mysqlDialect;
  const source = new SqlAppSource(client, dialect, new RowMapping({}, {}), settings);
  try {
    await source.prepare();
    const store = new CachedAppStore(source, pino({ level: 'silent' }));
    const fp: number[] = [];
    const reload: number[] = [];
    for (let i = 0; i < 21; i++) {
      const t0 = performance.now();
      await source.fingerprint();
      fp.push(performance.now() - t0);
    }
    for (let i = 0; i < 7; i++) {
      const t0 = performance.now();
      await store.refresh();
      reload.push(performance.now() - t0);
    }
    return { driver: db.driver, rows, fingerprintMs: median(fp.slice(1)), reloadMs: median(reload.slice(1)) };
  } finally {
    await source.close();
  }
}

async function main(): Promise<void> {
  prepareGenerator(common);
  const pgDb = await createDb('postgres');
  const myDb = await createDb('mysql');
  try {
    await fillApps(pgDb, burst);
    const runs: ConnectRun[] = [];
    for (let r = 0; r < rounds; r++) {
      // ABBA: drift over the run falls on both alike
      const order: ('static' | 'database')[] = r % 2 === 0 ? ['static', 'database'] : ['database', 'static'];
      for (const store of order) {
        const run = await connectRun(store, pgDb);
        runs.push(run);
        console.log(`round ${r + 1} ${store}: ${fmt.n(run.perSec)} conn/s, ${fmt.n(run.cpuUsPerConnection)} µs CPU/conn, ${run.failed} failed, other CPU ${fmt.n(run.otherPct)}%`);
      }
    }
    const bursts: BurstRun[] = [];
    for (let r = 0; r < rounds; r++) {
      const b = await burstRun(pgDb);
      bursts.push(b);
      console.log(`cold burst ${r + 1}: ${b.ok}/${burst} connected in ${fmt.n(b.ms)} ms (p50 ${fmt.n(b.p50Ms)} ms, p99 ${fmt.n(b.p99Ms)} ms), refused ${JSON.stringify(b.refused)}, ${b.lookups} lookups`);
    }
    const detector: DetectorRun[] = [];
    if (!flag(args, 'no-detector')) {
      for (const db of [pgDb, myDb]) {
        for (const rows of sizes) {
          const d = await detectorRun(db, rows);
          detector.push(d);
          console.log(`${d.driver} ${d.rows} rows: fingerprint ${d.fingerprintMs.toFixed(2)} ms, full reload ${d.reloadMs.toFixed(1)} ms`);
        }
      }
    }
    const med = (store: string, f: (r: ConnectRun) => number) => median(runs.filter((r) => r.store === store).map(f));
    const summary = {
      scenario: 'app-store',
      env: environment(common),
      params: { rounds, connections, burst, concurrency, workers: common.workers },
      connect: {
        static: { perSec: med('static', (r) => r.perSec), cpuUsPerConnection: med('static', (r) => r.cpuUsPerConnection) },
        database: { perSec: med('database', (r) => r.perSec), cpuUsPerConnection: med('database', (r) => r.cpuUsPerConnection) },
        runs,
      },
      burst: { ms: median(bursts.map((b) => b.ms)), p99Ms: median(bursts.map((b) => b.p99Ms)), ok: median(bursts.map((b) => b.ok)), runs: bursts },
      detector,
    };
    console.log(JSON.stringify(summary));
    console.log(`\n| measure (medians of ${rounds}) | static store | PostgreSQL store | database / static |\n|---|---:|---:|---:|`);
    const s = summary.connect.static;
    const d = summary.connect.database;
    console.log(`| connections/s (${connections}, subscribed) | ${fmt.n(s.perSec)} | ${fmt.n(d.perSec)} | ${(d.perSec / s.perSec).toFixed(2)}× |`);
    console.log(`| server CPU µs / connection | ${fmt.n(s.cpuUsPerConnection)} | ${fmt.n(d.cpuUsPerConnection)} | ${(d.cpuUsPerConnection / s.cpuUsPerConnection).toFixed(2)}× |`);
    console.log(`| other CPU while connecting (noise check) | ${fmt.n(med('static', (r) => r.otherPct))}% | ${fmt.n(med('database', (r) => r.otherPct))}% | |`);
    if (common.save) saveResult('app-store', summary);
  } finally {
    await pgDb.drop();
    await myDb.drop();
  }
}

await main();
