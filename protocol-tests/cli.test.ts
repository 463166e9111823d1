// The command line as a user runs it (issue 12): help, version, usage errors, --config=FILE, flags,
// did-you-mean warnings, the development app on loopback, and one node per port.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { freePort, repoRoot, startRedis, type RedisHandle } from '../src/testing/harness.js';
import { eventReaches, listeningAddresses, runCli, spawnCli, startCli, type CliProcess } from '../src/testing/cli-process.js';

const started: CliProcess[] = [];
let redis: RedisHandle | undefined;
after(async () => {
  await Promise.all(started.map((p) => p.stop()));
  await redis?.stop();
});

async function start(args: string[], env: Record<string, string>, port: number): Promise<CliProcess> {
  const p = await startCli(args, env, port);
  started.push(p);
  return p;
}

function configFile(content: unknown): string {
  const p = join(mkdtempSync(join(tmpdir(), 'ripple-cli-')), 'config.json');
  writeFileSync(p, JSON.stringify(content));
  return p;
}

const app = { id: 'cli-app', key: 'cli-key', secret: 'cli-secret' };
const appEnv = { APP_ID: app.id, APP_KEY: app.key, APP_SECRET: app.secret };
const version = (JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { version: string }).version;
/** pino's JSON lines at warn (40) and info (30). */
const logged = (out: string, level: number) =>
  out
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { level: number; msg: string })
    .filter((l) => l.level === level)
    .map((l) => l.msg);

test('--help, -h and help print the usage and exit 0; --version and -v print the package version', async () => {
  for (const args of [['--help'], ['-h'], ['help'], ['start', '--help']]) {
    const r = await runCli(args);
    assert.equal(r.code, 0, args.join(' '));
    assert.match(r.stdout, /^Usage: ripple \[start\] \[options\]/);
    for (const flag of ['--config FILE', '--port PORT', '--host ADDRESS', '--debug', '--help', '--version']) assert.ok(r.stdout.includes(flag), flag);
    assert.equal(r.stderr, '');
  }
  for (const args of [['--version'], ['-v']]) {
    const r = await runCli(args);
    assert.equal(r.code, 0);
    assert.equal(r.stdout, `ripple ${version}\n`);
  }
});

test('an unknown option or command is an error on stderr with exit code 2, never a start', async () => {
  const cases: [string[], string][] = [
    [['--bogus'], 'ripple: unknown option --bogus'],
    [['start', '--prot', '7000'], 'ripple: unknown option --prot'],
    [['stat'], 'ripple: unknown command "stat"'],
    [['--config'], 'ripple: --config needs a value'],
  ];
  for (const [args, message] of cases) {
    const r = await runCli(args, { LOG_LEVEL: 'info' });
    assert.equal(r.code, 2, args.join(' '));
    assert.equal(r.stderr, `${message}\nRun 'ripple --help' for usage.\n`);
    assert.equal(r.stdout, '', 'nothing started, nothing logged');
  }
});

test('--config=FILE (as Soketi users write it) and --config FILE both load the file', async () => {
  for (const style of ['--config=', '--config ']) {
    const port = await freePort();
    const f = configFile({ port, host: '127.0.0.1', apps: [app] });
    const args = style === '--config=' ? ['start', `--config=${f}`] : ['--config', f];
    const p = await start(args, {}, port);
    assert.match(p.stdout(), new RegExp(`ripple listening on 127\\.0\\.0\\.1:${port}  app_id=${app.id} key=${app.key} secret=\\(configured, not shown\\)`));
    await eventReaches(app, port);
    assert.equal((await p.stop()).code, 0);
  }
});

test('--port and --host override the environment and the file', async () => {
  const port = await freePort();
  const f = configFile({ port: 1, apps: [app] });
  const p = await start(['--config', f, '--port', String(port), '--host', '127.0.0.1'], { PORT: '2', HOST: '0.0.0.0' }, port);
  assert.deepEqual(listeningAddresses(port), ['127.0.0.1']);
  await eventReaches(app, port);
  await p.stop();
});

test('a bad setting stops the start with exit code 2 and names the setting as written', async () => {
  let r = await runCli([], { SOKETI_PORT: 'x' });
  assert.equal(r.code, 2);
  assert.equal(r.stderr, 'ripple: SOKETI_PORT: expected an integer, got "x"\n');
  r = await runCli(['--port', 'seven']);
  assert.equal(r.code, 2);
  assert.equal(r.stderr, 'ripple: --port: expected an integer, got "seven"\n');
  r = await runCli([`--config=${configFile({ apps: [{ ...app, maxConections: 5 }] })}`]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /apps\.0\.maxConections: unknown setting \(did you mean maxConnections\?\)/);
});

test('a variable that looks like one of ours but is not gets a did-you-mean warning at start', async () => {
  const port = await freePort();
  const p = await start([], { PORT: String(port), LOG_LEVEL: 'warn', APP_ID: 'x', APP_KEY: 'y', APP_SECERT: 'typo', REDIS_ULR: 'redis://127.0.0.1:1', SOKETI_DEFUALT_APP_KEY: 'z' }, port);
  const warnings = logged(p.stdout(), 40);
  assert.ok(warnings.includes('APP_SECERT is not a setting ripple reads; did you mean APP_SECRET?'), warnings.join('\n'));
  assert.ok(warnings.includes('REDIS_ULR is not a setting ripple reads; did you mean REDIS_URL?'));
  assert.ok(warnings.includes('SOKETI_DEFUALT_APP_KEY is not a setting ripple reads; did you mean SOKETI_DEFAULT_APP_KEY?'));
  assert.ok(!warnings.some((w) => /\b(PATH|HOME)\b/.test(w)), 'unrelated variables do not warn');
  // the misspelt secret was not read: the public development secret is in use, so loopback only
  assert.deepEqual(listeningAddresses(port), ['127.0.0.1']);
  assert.match(p.stdout(), /secret=app-secret/);
  await p.stop();
});

test('the development app listens on 127.0.0.1 only and says so; HOST=0.0.0.0 exposes it with a warning', { skip: process.platform !== 'linux' && 'reads /proc/net/tcp' }, async () => {
  const port = await freePort();
  const dev = await start([], { PORT: String(port), LOG_LEVEL: 'info' }, port);
  assert.deepEqual(listeningAddresses(port), ['127.0.0.1'], 'bound to loopback, not to every address');
  assert.match(dev.stdout(), new RegExp(`ripple listening on 127\\.0\\.0\\.1:${port}  app_id=app-id key=app-key secret=app-secret`));
  assert.ok(
    logged(dev.stdout(), 30).some((m) => /^no app is configured: serving the development app .* on 127\.0\.0\.1 only; .*set HOST \(or --host\)/.test(m)),
    dev.stdout(),
  );
  assert.deepEqual(logged(dev.stdout(), 40), []);
  await dev.stop();

  // The explicit choice: every address, and a warning. Only the socket table is checked (no traffic
  // to non-loopback addresses); the node is stopped at once.
  const port2 = await freePort();
  const open = await start([], { PORT: String(port2), HOST: '0.0.0.0', LOG_LEVEL: 'warn' }, port2);
  assert.deepEqual(listeningAddresses(port2), ['0.0.0.0']);
  const w = logged(open.stdout(), 40);
  assert.equal(w.length, 1, w.join('\n'));
  assert.match(w[0], /public secret "app-secret"\) on 0\.0\.0\.0 \(HOST\): anyone who can reach this port can publish events/);
  await open.stop();

  // A configured app keeps the old default: every address, no warning.
  const port3 = await freePort();
  const real = await start([], { PORT: String(port3), LOG_LEVEL: 'warn', ...appEnv, HOST: '127.0.0.1' }, port3);
  assert.deepEqual(logged(real.stdout(), 40), []);
  await real.stop();
});

test('a second single-node server on the same port fails with a clear message; the first keeps serving', async () => {
  const port = await freePort();
  const env = { PORT: String(port), HOST: '127.0.0.1', ...appEnv };
  const first = await start([], env, port);
  const second = await runCli([], env);
  assert.equal(second.code, 1);
  assert.equal(
    second.stderr,
    `ripple: cannot listen on 127.0.0.1:${port}: the port is already in use, or the address is not available on this machine. ` +
      'A single-node server owns its port; processes share one port only in cluster mode (REDIS_URL)\n',
  );
  await eventReaches(app, port);
  assert.equal(first.hasExited(), false);
  // sharing on purpose is refused without cluster mode
  const shared = await runCli([], { ...env, REUSE_PORT: '1' });
  assert.equal(shared.code, 2);
  assert.match(shared.stderr, /^ripple: REUSE_PORT: sharing the port needs cluster mode/);
  await first.stop();
});

test('a metrics port that is taken stops the start with exit code 1, never a node half started', async () => {
  const taken = createServer();
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
  try {
    const metricsPort = (taken.address() as AddressInfo).port;
    const r = await runCli([], { PORT: String(await freePort()), HOST: '127.0.0.1', METRICS_PORT: String(metricsPort), ...appEnv });
    assert.equal(r.code, 1, r.stderr);
    assert.equal(r.stderr, `ripple: cannot listen on 127.0.0.1:${metricsPort} for metrics: the port is in use, or the address is not available on this machine\n`);
  } finally {
    await new Promise<void>((resolve) => taken.close(() => resolve()));
  }
});

test('a second node on the metrics port of a running one fails to start like one on its main port; scrapes keep reaching the first', async () => {
  const metricsPort = await freePort();
  const port = await freePort();
  const env = { HOST: '127.0.0.1', METRICS_PORT: String(metricsPort), ...appEnv };
  const first = await start([], { ...env, PORT: String(port) }, port);
  const second = await runCli([], { ...env, PORT: String(await freePort()) });
  assert.equal(second.code, 1, second.stderr);
  assert.match(second.stderr, new RegExp(`^ripple: cannot listen on 127\\.0\\.0\\.1:${metricsPort} for metrics`));
  const pid = async () => /^process_start_time_seconds (\d+)/m.exec(await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text())?.[1];
  const firstStart = await pid();
  for (let i = 0; i < 5; i++) assert.equal(await pid(), firstStart, 'every scrape reaches the first node');
  assert.equal(first.hasExited(), false);
  await first.stop();
});

test('cluster-mode nodes share a port (REUSE_PORT=1, also the default there); a single-node server cannot join them', async () => {
  redis = await startRedis();
  const port = await freePort();
  const env = { PORT: String(port), HOST: '127.0.0.1', ...appEnv, REDIS_URL: redis.url, REDIS_PREFIX: `cli-${process.pid}` };
  const a = await start([], { ...env, NODE_ID: 'share-a', REUSE_PORT: '1' }, port);
  const b = spawnCli([], { ...env, NODE_ID: 'share-b', REUSE_PORT: '1' });
  started.push(b);
  const c = spawnCli([], { ...env, NODE_ID: 'share-c' });
  started.push(c);
  // both have started when each has printed its listening line
  const deadline = Date.now() + 20_000;
  while (!(b.stdout().includes('ripple listening') && c.stdout().includes('ripple listening'))) {
    assert.ok(!b.hasExited() && !c.hasExited(), `${b.stderr()}${c.stderr()}`);
    assert.ok(Date.now() < deadline, 'the other nodes did not start');
    await new Promise((r) => setTimeout(r, 50));
  }
  await eventReaches(app, port);
  const single = await runCli([], { PORT: String(port), HOST: '127.0.0.1', ...appEnv });
  assert.equal(single.code, 1);
  assert.match(single.stderr, /cannot listen on 127\.0\.0\.1:\d+: the port is already in use/);
  for (const p of [a, b, c]) assert.equal((await p.stop()).code, 0);
});
