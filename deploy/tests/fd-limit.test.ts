// A node at its open-file limit (ulimit -n) stays healthy: it says its limit at start, refuses new
// WebSockets with 4100 "over capacity" (pusher-js backs off and retries) while its reserve is reached,
// counts the refusals, stays idle-cheap meanwhile, and lets clients in again once some leave. A burst
// of connections near the limit is let in up to capacity, only the excess refused.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import WebSocket from 'ws';
import { freePort, repoRoot } from '../../src/testing/harness.js';
import { eventually, sleep } from '../../src/testing/eventually.js';

const LIMIT = 64;
let child: ChildProcess | undefined;
const sockets: WebSocket[] = [];
after(() => {
  for (const ws of sockets) ws.terminate();
  child?.kill('SIGKILL');
});

/** A node started through `sh -c "ulimit -n 64; exec node ..."`, so the node itself runs under the limit. */
async function startLimitedNode(limit = LIMIT): Promise<{ port: number; pid: number; output: () => string }> {
  const port = await freePort();
  const cli = join(repoRoot, 'src', 'cli.ts');
  child?.kill('SIGKILL');
  child = spawn('sh', ['-c', `ulimit -n ${limit}; exec "${process.execPath}" --import tsx "${cli}"`], {
    cwd: repoRoot,
    env: { ...process.env, PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  await eventually(() => fetch(`http://127.0.0.1:${port}/health`).then((r) => r.status === 200, () => false), { timeoutMs: 20_000, intervalMs: 100, what: 'the limited node answers /health' });
  return { port, pid: child.pid!, output: () => out };
}

type Outcome = { kind: 'open'; ws: WebSocket } | { kind: 'refused'; code: number; first: string } | { kind: 'hung' };

/** One connection attempt: established, refused with a code, or no answer within 2 s. */
function attempt(port: number): Promise<Outcome> {
  return new Promise((resolve) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/app/app-key?protocol=7`);
    sockets.push(ws);
    let first = '';
    const timer = setTimeout(() => resolve({ kind: 'hung' }), 2000);
    ws.on('error', () => {});
    ws.on('message', (m) => {
      first ||= m.toString();
      if (first.includes('pusher:connection_established')) {
        clearTimeout(timer);
        resolve({ kind: 'open', ws });
      }
    });
    ws.on('close', (code) => {
      clearTimeout(timer);
      resolve({ kind: 'refused', code, first });
    });
  });
}

/** CPU seconds (user + system) the process has used, from /proc/<pid>/stat. */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // utime and stime are fields 14 and 15 of the line (11 and 12 after the command name), in clock ticks.
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

test(`under ulimit -n ${LIMIT}: refused with 4100 at the reserve, under 5 % CPU while clients keep knocking, open again once some leave`, { skip: process.platform !== 'linux' && 'reads /proc' }, async () => {
  const node = await startLimitedNode();
  const listening = node.output().split('\n').find((l) => l.includes('"msg":"listening"'));
  assert.ok(listening, node.output());
  assert.equal(JSON.parse(listening).openFiles.limit, LIMIT, 'the start log says the open-file limit');

  const open: WebSocket[] = [];
  let last: Outcome = { kind: 'hung' };
  for (let i = 0; i < LIMIT; i++) {
    last = await attempt(node.port);
    if (last.kind !== 'open') break;
    open.push(last.ws);
  }
  assert.ok(open.length >= 10, `${open.length} connections got in before the limit`);
  assert.equal(last.kind, 'refused', `the connection past the reserve is refused, not left hanging (${last.kind})`);
  assert.equal(last.kind === 'refused' && last.code, 4100);
  assert.equal(last.kind === 'refused' && JSON.parse(last.first).data.code, 4100, 'told why with pusher:error 4100 first');

  // Clients keep knocking while the node is full; it answers each and stays idle otherwise.
  const knocking = (async () => {
    for (let i = 0; i < 6; i++) {
      void attempt(node.port);
      await sleep(500);
    }
  })();
  const before = cpuSeconds(node.pid);
  await sleep(3000);
  const share = (cpuSeconds(node.pid) - before) / 3;
  await knocking;
  assert.ok(share < 0.05, `the node used ${(share * 100).toFixed(1)} % of a core while full`);

  const metrics = await (await fetch(`http://127.0.0.1:${node.port}/metrics`)).text();
  const refused = /^ripple_connections_refused_total\{app="app-id",reason="open_files"\} (\d+)/m.exec(metrics);
  assert.ok(refused && Number(refused[1]) >= 2, `refusals are counted: ${refused?.[0]}`);

  // Some clients leave: new ones get in again.
  for (const ws of open.splice(0, 5)) ws.close();
  await sleep(500);
  let admitted = 0;
  for (let i = 0; i < 3; i++) if ((await attempt(node.port)).kind === 'open') admitted++;
  assert.equal(admitted, 3, 'connections get in again once descriptors are free');
});

test('under ulimit -n 300: 265 simultaneous connects are let in up to capacity (as many as fit one at a time), only the excess refused with 4100', { skip: process.platform !== 'linux' && 'reads /proc' }, async (t) => {
  const node = await startLimitedNode(300);

  // Capacity, one at a time: connect until the first refusal.
  const one: WebSocket[] = [];
  let last: Outcome = { kind: 'hung' };
  for (let i = 0; i < 300; i++) {
    last = await attempt(node.port);
    if (last.kind !== 'open') break;
    one.push(last.ws);
  }
  assert.equal(last.kind, 'refused', `one at a time ends in a refusal (${last.kind})`);
  const capacity = one.length;
  assert.ok(capacity > 200 && capacity < 265, `${capacity} fit one at a time`);
  await Promise.all(one.map((ws) => new Promise((r) => (ws.once('close', r), ws.close()))));
  await sleep(1500); // the node's count of open descriptors settles (closed sockets, refused ones)

  // The same number and a few more at once.
  const burst = await Promise.all(Array.from({ length: 265 }, () => attempt(node.port)));
  const opened = burst.filter((o) => o.kind === 'open').length;
  const refused = burst.filter((o): o is Extract<Outcome, { kind: 'refused' }> => o.kind === 'refused');
  assert.equal(burst.filter((o) => o.kind === 'hung').length, 0, 'every connect is answered');
  assert.ok(opened >= capacity - 3, `${opened} of 265 let in at once; ${capacity} fit one at a time`);
  assert.ok(opened <= capacity + 3, `${opened} let in at once stays within the capacity (${capacity})`);
  for (const r of refused) assert.equal(r.code, 4100, `refused with 4100: ${r.first}`);
  assert.equal(opened + refused.length, 265);
  t.diagnostic(`one at a time: ${capacity}; at once: ${opened} let in, ${refused.length} refused`);

  // And the node still answers: the reserve was kept.
  assert.equal((await fetch(`http://127.0.0.1:${node.port}/health`)).status, 200);
});
