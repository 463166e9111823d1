// Summarises a V8 .cpuprofile (from `bench/run.ts ... --cpu-prof DIR`): self time per function, top N.
//   node --import tsx bench/profile-top.ts <file.cpuprofile> [N] [--by-file]
// Self time of a node = samples whose leaf is that node × the mean sample interval. Functions are keyed by
// name + file:line, so the same function reached through different call paths is added up; --by-file
// adds them up per file (or per "(native)"/"(program)"/"(garbage collector)" pseudo-node).
import { readFileSync } from 'node:fs';

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}
interface Profile {
  nodes: Node[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

const args = process.argv.slice(2);
const file = args.find((a) => !a.startsWith('--') && !/^\d+$/.test(a));
if (!file) {
  console.error('usage: node --import tsx bench/profile-top.ts <file.cpuprofile> [N] [--by-file]');
  process.exit(2);
}
const top = Number(args.find((a) => /^\d+$/.test(a)) ?? 25);
const byFile = args.includes('--by-file');
const p = JSON.parse(readFileSync(file, 'utf8')) as Profile;
const byId = new Map(p.nodes.map((n) => [n.id, n]));
const selfUs = new Map<number, number>();
for (let i = 0; i < p.samples.length; i++) {
  const dt = p.timeDeltas[i + 1] ?? 0;
  selfUs.set(p.samples[i], (selfUs.get(p.samples[i]) ?? 0) + dt);
}
const total = [...selfUs.values()].reduce((a, b) => a + b, 0);
const short = (url: string) =>
  url
    .replace(/^file:\/\//, '')
    .replace(/.*\/node_modules\//, 'node_modules/')
    .replace(/.*\/ripple-bench-src\/[0-9a-f]+\//, '')
    .replace(/^node:/, 'node:');
const agg = new Map<string, number>();
for (const [id, us] of selfUs) {
  const n = byId.get(id)!;
  const f = n.callFrame;
  const where = f.url ? short(f.url) : '';
  const key = byFile ? where || f.functionName || '(anonymous)' : `${f.functionName || '(anonymous)'}  ${where ? `${where}:${f.lineNumber + 1}` : ''}`;
  agg.set(key, (agg.get(key) ?? 0) + us);
}
const rows = [...agg].sort((a, b) => b[1] - a[1]).slice(0, top);
console.log(`${file}: ${(total / 1e6).toFixed(2)} s sampled (${((p.endTime - p.startTime) / 1e6).toFixed(1)} s wall)`);
console.log('| self ms | self % | function (file:line) |');
console.log('|---:|---:|---|');
for (const [k, us] of rows) console.log(`| ${(us / 1000).toFixed(0)} | ${((us / total) * 100).toFixed(1)} | ${k.replace(/\|/g, '\\|')} |`);
