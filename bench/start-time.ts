// How long `npm start` takes to "listening": cold (a fresh checkout, nothing built) and warm (the last
// build reused). Runs in a snapshot of the work tree (`git ls-files`, copied to a temp folder, with
// node_modules linked to the repo's), so the repo's own dist/ is left alone.
//   node --import tsx bench/start-time.ts [--warm-runs 5]
import { spawn } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { freePort, repoRoot } from '../src/testing/harness.js';

const warmRuns = Number(process.argv[process.argv.indexOf('--warm-runs') + 1]) || 5;

function snapshot(): string {
  const dir = mkdtempSync(join(tmpdir(), 'ripple-start-'));
  const files = execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard'], { cwd: repoRoot, encoding: 'utf8' }).split('\n').filter(Boolean);
  for (const f of files) {
    mkdirSync(dirname(join(dir, f)), { recursive: true });
    try {
      cpSync(join(repoRoot, f), join(dir, f));
    } catch {
      // listed but deleted in the work tree
    }
  }
  symlinkSync(join(repoRoot, 'node_modules'), join(dir, 'node_modules'), 'dir');
  return dir;
}

/** ms from `npm start` to the node's "ripple listening" line; the process group it made is stopped after. */
async function startOnce(dir: string): Promise<number> {
  const port = await freePort();
  const t0 = performance.now();
  const child = spawn('npm', ['start'], { cwd: dir, env: { ...process.env, PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'warn' }, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const ms = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no "listening" within 120 s:\n${out}`)), 120_000);
    child.stdout!.on('data', (d) => {
      out += d;
      if (out.includes('ripple listening')) {
        clearTimeout(timer);
        resolve(performance.now() - t0);
      }
    });
    child.stderr!.on('data', (d) => (out += d));
    child.on('exit', (code) => reject(new Error(`npm start exited ${code}:\n${out}`)));
  });
  const exited = new Promise((r) => child.once('exit', r));
  process.kill(-child.pid!, 'SIGTERM');
  await exited;
  return ms;
}

const dir = snapshot();
try {
  const cold = await startOnce(dir);
  const warm: number[] = [];
  for (let i = 0; i < warmRuns; i++) warm.push(await startOnce(dir));
  warm.sort((a, b) => a - b);
  const median = warm[Math.floor(warm.length / 2)];
  console.log(JSON.stringify({ node: process.version, coldMs: Math.round(cold), warmMedianMs: Math.round(median), warmMs: warm.map(Math.round) }));
  console.log(`npm start to "listening": cold ${(cold / 1000).toFixed(1)} s, warm ${(median / 1000).toFixed(2)} s (median of ${warm.length})`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
