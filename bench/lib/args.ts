// Minimal `--key value` / `--flag` / `--key=value` argument parser shared by the bench commands.
export type Args = Record<string, string | boolean>;

export function parseArgs(argv: string[] = process.argv.slice(2)): Args {
  const out: Args = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) throw new Error(`unexpected argument ${a}`);
    const eq = a.indexOf('=');
    if (eq > 0) {
      out[a.slice(2, eq)] = a.slice(eq + 1);
    } else if (i + 1 < argv.length && !argv[i + 1].startsWith('--')) {
      out[a.slice(2)] = argv[++i];
    } else {
      out[a.slice(2)] = true;
    }
  }
  return out;
}

export function num(args: Args, key: string, dflt: number): number {
  const v = args[key];
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new Error(`--${key} must be a number, got ${String(v)}`);
  return n;
}

export function str(args: Args, key: string, dflt: string): string {
  const v = args[key];
  return typeof v === 'string' ? v : dflt;
}

export function flag(args: Args, key: string): boolean {
  const v = args[key];
  return v === true || v === 'true' || v === '1';
}
