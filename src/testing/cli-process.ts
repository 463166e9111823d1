// Runs `src/cli.ts` as a user does: with the arguments and environment given (and nothing of ours
// inherited from the test runner's environment), for protocol-tests/cli.test.ts and protocol-tests/soketi-settings.test.ts.
// Stops exactly the processes it started.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import PusherServer from 'pusher';
import { repoRoot } from './harness.js';
import { sleep } from './eventually.js';
import { Pusher } from './pusher-js.js';
import { rippleEnvNames } from '../config/env-names.js';
import { soketiEnvNames } from '../config/soketi.js';
import { SOCKUDO_ENV } from '../config/peer-app-store.js';

const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of live) c.kill('SIGKILL');
});

/** The runner's environment without any setting the server reads, plus `env`. */
export function cleanEnv(env: Record<string, string> = {}): Record<string, string> {
  const out: Record<string, string> = {};
  const ours = new Set([...rippleEnvNames, ...soketiEnvNames, ...Object.keys(SOCKUDO_ENV)]);
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !ours.has(k) && !k.startsWith('SOKETI_')) out[k] = v;
  return { ...out, ...env };
}

export interface CliProcess {
  pid: number;
  process: ChildProcess;
  stdout(): string;
  stderr(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  hasExited(): boolean;
  /** SIGTERM, SIGKILL after timeoutMs; resolves with the exit. */
  stop(timeoutMs?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** `cwd`: the working directory (where a .env file is read); the repository root unless given. */
export function spawnCli(args: string[], env: Record<string, string>, cwd = repoRoot): CliProcess {
  // tsx by its file URL: the working directory may be anywhere
  const tsx = pathToFileURL(join(repoRoot, 'node_modules', 'tsx', 'dist', 'loader.mjs')).href;
  const child = spawn(process.execPath, ['--import', tsx, join(repoRoot, 'src', 'cli.ts'), ...args], {
    cwd,
    env: cleanEnv(env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  live.add(child);
  let out = '';
  let err = '';
  let done = false;
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (err += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => {
      done = true;
      live.delete(child);
      resolve({ code, signal });
    }),
  );
  return {
    pid: child.pid!,
    process: child,
    stdout: () => out,
    stderr: () => err,
    exited,
    hasExited: () => done,
    async stop(timeoutMs = 10_000) {
      if (done) return exited;
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      const r = await exited;
      clearTimeout(t);
      return r;
    },
  };
}

/** Runs the CLI to its exit (killed after timeoutMs: a command that should exit must not start a server). */
export async function runCli(args: string[], env: Record<string, string> = {}, timeoutMs = 15_000) {
  const p = spawnCli(args, env);
  const t = setTimeout(() => p.process.kill('SIGKILL'), timeoutMs);
  const { code, signal } = await p.exited;
  clearTimeout(t);
  return { code, signal, stdout: p.stdout(), stderr: p.stderr() };
}

/** Starts the CLI and waits until /health (under `pathPrefix`) answers on 127.0.0.1:port. */
export async function startCli(args: string[], env: Record<string, string>, port: number, opts: { cwd?: string; pathPrefix?: string } = {}): Promise<CliProcess> {
  const p = spawnCli(args, env, opts.cwd);
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (p.hasExited()) throw new Error(`node exited early (${JSON.stringify(await p.exited)}):\n${p.stdout()}${p.stderr()}`);
    const ok = await fetch(`http://127.0.0.1:${port}${opts.pathPrefix ?? ''}/health`).then((r) => r.status === 200, () => false);
    if (ok) return p;
    if (Date.now() > deadline) {
      await p.stop(1000);
      throw new Error(`node on ${port} did not answer:\n${p.stdout()}${p.stderr()}`);
    }
    await sleep(50);
  }
}

export interface App {
  id: string;
  key: string;
  secret: string;
}

/**
 * A pusher-js client on `wsPort` subscribes to a channel; an event triggered through the REST API of
 * `restPort` (the same node, or another one in the cluster) must reach it.
 */
export async function eventReaches(app: App, wsPort: number, restPort = wsPort): Promise<void> {
  const client = new Pusher(app.key, { cluster: 'mt1', wsHost: '127.0.0.1', wsPort, forceTLS: false, enabledTransports: ['ws'], disableStats: true });
  const channel = `cli-${Math.random().toString(36).slice(2)}`;
  try {
    const ch = client.subscribe(channel);
    await withTimeout(new Promise<void>((resolve) => ch.bind('pusher:subscription_succeeded', () => resolve())), 5000, `subscription to ${channel} on ${wsPort}`);
    const got = new Promise<unknown>((resolve) => ch.bind('hello', resolve));
    const rest = new PusherServer({ appId: app.id, key: app.key, secret: app.secret, host: '127.0.0.1', port: String(restPort), useTLS: false });
    // In cluster mode the subscription reaches the other node through Redis a moment later: retry.
    const deadline = Date.now() + 5000;
    let received: unknown;
    for (;;) {
      await rest.trigger(channel, 'hello', { from: restPort });
      received = await withTimeout(got, 500, 'event').catch(() => undefined);
      if (received !== undefined || Date.now() > deadline) break;
    }
    if (received === undefined) throw new Error(`event triggered on ${restPort} did not reach the client on ${wsPort}`);
    if ((received as { from: number }).from !== restPort) throw new Error(`unexpected event ${JSON.stringify(received)}`);
  } finally {
    client.disconnect();
  }
}

async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, reject) => (t = setTimeout(() => reject(new Error(`timed out: ${what}`)), ms)))]);
  } finally {
    clearTimeout(t);
  }
}

/** Local addresses with a listening TCP socket on `port` (from /proc/net/tcp and tcp6: the socket table, no traffic). */
export function listeningAddresses(port: number): string[] {
  const out: string[] = [];
  for (const [file, v6] of [['/proc/net/tcp', false], ['/proc/net/tcp6', true]] as const) {
    let text = '';
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols.length < 4 || cols[3] !== '0A') continue; // 0A = LISTEN
      const [hexAddr, hexPort] = cols[1].split(':');
      if (parseInt(hexPort, 16) !== port) continue;
      out.push(v6 ? ipv6(hexAddr) : ipv4(hexAddr));
    }
  }
  return out;
}

function ipv4(hex: string): string {
  return [3, 2, 1, 0].map((i) => parseInt(hex.slice(i * 2, i * 2 + 2), 16)).join('.');
}

function ipv6(hex: string): string {
  if (/^0+$/.test(hex)) return '::';
  if (hex === '00000000000000000000000001000000') return '::1';
  if (hex.startsWith('0000000000000000FFFF0000')) return `::ffff:${ipv4(hex.slice(24))}`;
  return hex;
}
