// Instructions of a callgrind run (`--callgrind DIR` of bench/run.ts) per unit of work, grouped by what ran
// them: uWS's native code, libc, V8's garbage collector, V8's parser/compiler, V8 builtins, JIT-compiled JS.
// Instruction counts do not depend on the machine's other load, so two servers can be compared on a busy
// machine. The kernel's share (syscalls) is not counted by callgrind.
//   node --import tsx bench/callgrind-top.ts <callgrind.out file> <units> [top N functions]
// `units`: what to divide by (deliveries received for fanout, triggers for rest; both in the run's JSON line).
import { spawnSync } from 'node:child_process';

const [file, unitsArg, topArg] = process.argv.slice(2);
if (!file || !unitsArg) {
  process.stderr.write('usage: callgrind-top.ts <callgrind.out file> <units> [top N]\n');
  process.exit(2);
}
const units = Number(unitsArg);
const top = Number(topArg ?? 0);
const r = spawnSync('callgrind_annotate', ['--inclusive=no', '--threshold=100', file], { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
if (r.status !== 0) throw new Error(`callgrind_annotate: ${r.stderr}`);

const GROUPS: [string, RegExp][] = [
  ['uWS (native)', /uws_linux/],
  ['libc / libstdc++', /libc\.so|libgcc|libstdc\+\+/],
  ['V8 garbage collector', /Marking|Sweep|Scaveng|Heap|heap::|MemoryChunk|Evacuat|Compactor|RememberedSet|SlotSet|BodyDescriptor|SizeFromMap|Concurrent/],
  ['V8 parser / compilers', /Scanner|Parser|Compiler|compiler::|Bytecode|interpreter::|maglev|Maglev|Zone|AstNode/],
  ['JIT-compiled JS', /\[\?\?\?\]/],
  ['V8 builtins (JS runtime)', /Builtins_/],
  ['crypto (OpenSSL)', /libcrypto|EVP_|sha256|SHA256|md5|MD5/],
  ['node / V8 other', /\/node\]/],
];

let total = 0;
const byGroup = new Map<string, number>();
const fns: [number, string][] = [];
for (const line of r.stdout.split('\n')) {
  const t = /^\s*([\d,]+)\s+\(100\.0%\)\s+PROGRAM TOTALS/.exec(line);
  if (t) {
    total = Number(t[1].replace(/,/g, ''));
    continue;
  }
  const m = /^\s*([\d,]+)\s+\(\s*[\d.]+%\)\s+(.*)$/.exec(line);
  if (!m) continue;
  const ir = Number(m[1].replace(/,/g, ''));
  const fn = m[2];
  const group = GROUPS.find(([, re]) => re.test(fn))?.[0] ?? 'other';
  byGroup.set(group, (byGroup.get(group) ?? 0) + ir);
  fns.push([ir, fn]);
}
const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
console.log(`${file}: ${fmt(total)} instructions, ${fmt(total / units)} per unit (${fmt(units)} units)`);
for (const [g, ir] of [...byGroup].sort((a, b) => b[1] - a[1])) console.log(`  ${g.padEnd(26)} ${fmt(ir / units).padStart(10)}  ${((100 * ir) / total).toFixed(1)}%`);
if (top > 0) {
  console.log(`top ${top} functions (instructions per unit):`);
  for (const [ir, fn] of fns.sort((a, b) => b[0] - a[0]).slice(0, top)) console.log(`  ${fmt(ir / units).padStart(8)}  ${fn.length > 150 ? fn.slice(0, 147) + '...' : fn}`);
}
