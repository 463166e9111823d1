// Runs deploy/nginx/nginx.conf for real: a copy with only the listen port, the upstream server
// addresses and the pid/log/temp paths substituted, under a non-daemon nginx child process.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { eventually } from '../../../src/testing/eventually.js';
import { repoRoot } from '../../../src/testing/harness.js';

export const nginxConfPath = join(repoRoot, 'deploy', 'nginx', 'nginx.conf');

/** The nginx binary, installing Debian's nginx-light when it is missing and we are root. */
export function nginxBinary(): string {
  for (const p of ['/usr/sbin/nginx', '/usr/bin/nginx']) if (existsSync(p)) return p;
  const which = spawnSync('sh', ['-c', 'command -v nginx'], { encoding: 'utf8' });
  if (which.status === 0 && which.stdout.trim()) return which.stdout.trim();
  if (process.getuid?.() !== 0) throw new Error('nginx is not installed (apt-get install nginx-light, or run scripts/test-deps.sh as root)');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  let r = spawnSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', 'nginx-light'], { env, encoding: 'utf8' });
  if (r.status !== 0) {
    spawnSync('apt-get', ['update', '-qq'], { env });
    r = spawnSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', 'nginx-light'], { env, encoding: 'utf8' });
  }
  if (r.status !== 0 || !existsSync('/usr/sbin/nginx')) throw new Error(`could not install nginx-light:\n${r.stdout}\n${r.stderr}`);
  return '/usr/sbin/nginx';
}

export interface RenderOptions {
  listenPort: number;
  /** Loopback ports of the nodes, in the order of the config's `server` lines. */
  upstreamPorts: number[];
  /** Directory for the pid file, logs and temp files. */
  dir: string;
}

function replaceCounted(text: string, re: RegExp, expected: number, what: string, by: (match: string, ...groups: string[]) => string): string {
  let n = 0;
  const out = text.replace(re, (...args: unknown[]) => {
    n++;
    return by(...(args.slice(0, -2) as [string, ...string[]]));
  });
  if (n !== expected) throw new Error(`deploy/nginx/nginx.conf: expected ${expected} ${what}, found ${n}`);
  return out;
}

/**
 * The committed config with addresses, ports and paths substituted, nothing else. Throws when the
 * committed file no longer has the lines this relies on, so the test cannot silently run another config.
 */
export function renderNginxConf(text: string, o: RenderOptions): string {
  let out = replaceCounted(text, /^(\s*)listen\s+80;/gm, 1, '`listen 80;` line', (_m, indent) => `${indent}listen 127.0.0.1:${o.listenPort};`);
  // Each upstream block lists every node: a node's name stands for the same port wherever it appears.
  const names: string[] = [];
  out = out.replace(/^(\s*server\s+)([A-Za-z0-9.-]+):6001\b/gm, (_m, head: string, name: string) => {
    if (!names.includes(name)) names.push(name);
    return `${head}127.0.0.1:${o.upstreamPorts[names.indexOf(name)]}`;
  });
  if (names.length !== o.upstreamPorts.length) {
    throw new Error(`deploy/nginx/nginx.conf: expected ${o.upstreamPorts.length} upstream nodes (\`server <node>:6001\` lines), found ${names.length}`);
  }
  out = replaceCounted(out, /^(\s*pid\s+)\/var\/run\/nginx\.pid;/gm, 1, '`pid` line', (_m, head) => `${head}${o.dir}/nginx.pid;`);
  out = out.replace(/\/var\/log\/nginx\//g, `${o.dir}/`).replace(/\/var\/cache\/nginx\//g, `${o.dir}/`);
  if (/\/var\//.test(out)) throw new Error('deploy/nginx/nginx.conf: a /var/ path is left that the test does not know how to move');
  return out;
}

export interface NginxHandle {
  port: number;
  pid: number;
  dir: string;
  process: ChildProcess;
  output(): string;
  /** The access log so far (which node served what). */
  accessLog(): string;
  stop(): Promise<void>;
}

/** Starts nginx in the foreground with a rendered copy of deploy/nginx/nginx.conf. */
export async function startNginx(o: Omit<RenderOptions, 'dir'>): Promise<NginxHandle> {
  const bin = nginxBinary();
  const dir = mkdtempSync(join(tmpdir(), 'ripple-nginx-'));
  // nginx started as root runs its workers as an unprivileged user: they must reach the temp dirs.
  chmodSync(dir, 0o755);
  const conf = join(dir, 'nginx.conf');
  writeFileSync(conf, renderNginxConf(readFileSync(nginxConfPath, 'utf8'), { ...o, dir }));
  const check = spawnSync(bin, ['-t', '-q', '-p', dir, '-c', conf], { encoding: 'utf8' });
  if (check.status !== 0) throw new Error(`nginx -t rejected the config:\n${check.stderr}`);
  const child = spawn(bin, ['-p', dir, '-c', conf, '-g', 'daemon off;'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  // SIGTERM, not SIGKILL: the master then stops its workers; a killed master would leave them serving.
  const onExit = () => child.kill('SIGTERM');
  process.on('exit', onExit);
  void exited.then(() => process.off('exit', onExit));
  await eventually(
    async () => {
      if (child.exitCode !== null) throw new Error(`nginx exited early:\n${out}\n${readIf(join(dir, 'error.log'))}`);
      return fetch(`http://127.0.0.1:${o.listenPort}/nonexistent`).then(
        (r) => r.status === 404,
        () => false,
      );
    },
    { timeoutMs: 10_000, intervalMs: 50, what: () => `nginx did not answer on ${o.listenPort}:\n${out}` },
  );
  return {
    port: o.listenPort,
    pid: child.pid!,
    dir,
    process: child,
    output: () => out + readIf(join(dir, 'error.log')),
    accessLog: () => readIf(join(dir, 'access.log')),
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      // SIGQUIT: graceful stop (finishes open requests); SIGTERM: fast stop. Upgraded sockets are cut.
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

function readIf(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}
