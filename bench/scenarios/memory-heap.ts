// The V8 heap of a server, broken down per connection: two heap snapshots (before and after N more
// connections) grouped into kinds of objects, and the growth of each kind divided by N.
//
// A kind is named so that a reader can tell whose it is: a class instance by its constructor
// (`Session`); a plain object, which V8 calls `Object`, by its property names (`{app,conn,origin,...}`,
// so uWS's user data and a subscription are told apart); anything else (strings, property and element
// stores, a Map's hash table, closures' contexts, heap numbers) by what holds it: the kind of its first
// retainer and the edge's name (`string ← ChannelState.topic`).
// Run on its own: node --import tsx bench/scenarios/memory-heap.ts <before.heapsnapshot> <after.heapsnapshot> <N>
import { readFileSync } from 'node:fs';
import { isMain } from '../lib/common.js';

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[]]; edge_fields: string[]; edge_types: [string[]] }; node_count: number };
  nodes: number[];
  edges: number[];
  strings: string[];
}

export interface HeapKind {
  kind: string;
  count: number;
  bytes: number;
}

/** Every kind of object in a snapshot with its count and self size. */
export function heapKinds(file: string): Map<string, HeapKind> {
  const snap = JSON.parse(readFileSync(file, 'utf8')) as Snapshot;
  const { meta } = snap.snapshot;
  const nf = meta.node_fields.length;
  const ef = meta.edge_fields.length;
  const nType = meta.node_fields.indexOf('type');
  const nName = meta.node_fields.indexOf('name');
  const nSize = meta.node_fields.indexOf('self_size');
  const nEdges = meta.node_fields.indexOf('edge_count');
  const eType = meta.edge_fields.indexOf('type');
  const eName = meta.edge_fields.indexOf('name_or_index');
  const eTo = meta.edge_fields.indexOf('to_node');
  const nodeTypes = meta.node_types[0];
  const edgeTypes = meta.edge_types[0];
  const { nodes, edges, strings } = snap;
  const count = nodes.length / nf;

  // Each node's first retainer (a strong edge: weak and shortcut edges do not say who owns it).
  const parent = new Int32Array(count).fill(-1);
  const parentEdge = new Int32Array(count).fill(-1);
  const propNames: (string[] | undefined)[] = new Array(count);
  for (let n = 0, e = 0; n < count; n++) {
    const end = e + nodes[n * nf + nEdges] * ef;
    const isObject = nodeTypes[nodes[n * nf + nType]] === 'object';
    for (; e < end; e += ef) {
      const type = edgeTypes[edges[e + eType]];
      if (type === 'weak' || type === 'shortcut') continue;
      const to = edges[e + eTo] / nf;
      // A named property says more about whose it is than a hash table's slot: it wins.
      if (parent[to] < 0 || (type === 'property' && edgeTypes[edges[parentEdge[to] + eType]] !== 'property')) {
        parent[to] = n;
        parentEdge[to] = e;
      }
      if (isObject && type === 'property') (propNames[n] ??= []).push(strings[edges[e + eName]]);
    }
  }

  // A class instance is named by its constructor; a built-in container (Map, Set, Array, an object
  // literal without properties) and V8's own objects also by what holds them.
  const builtin = /^(Map|Set|Array|WeakMap|WeakSet|Promise|system \/ .*|\{\})$/;
  const objectName = (n: number): string => {
    const name = strings[nodes[n * nf + nName]];
    if (name !== 'Object') return name;
    const props = (propNames[n] ?? []).filter((p) => p !== '__proto__' && p !== 'map');
    return `{${props.sort().join(',')}}`;
  };
  const ownName = (n: number): string => {
    const type = nodeTypes[nodes[n * nf + nType]];
    if (type === 'object') return objectName(n);
    if (type === 'closure') return `closure ${strings[nodes[n * nf + nName]] || '(anonymous)'}`;
    if (type === 'native' || type === 'hidden' || type === 'array' || type === 'code' || type === 'object shape') return strings[nodes[n * nf + nName]].slice(0, 40) || `(${type})`;
    return type;
  };
  const kindOf = (n: number, depth = 0): string => {
    const own = ownName(n);
    if (nodeTypes[nodes[n * nf + nType]] === 'object' && !builtin.test(own)) return own;
    const p = parent[n];
    if (p < 0 || depth > 2) return own;
    const e = parentEdge[n];
    const edgeType = edgeTypes[edges[e + eType]];
    const name = edgeType === 'element' || edgeType === 'hidden' ? '' : strings[edges[e + eName]];
    const edge = name === '' || /^\d+$/.test(name) ? '[]' : `.${name}`;
    return `${own} ← ${kindOf(p, depth + 1)}${edge}`;
  };
  // Compiled code, scripts' sources and the compilers' data grow as code runs for the first time, not per connection.
  const code = /sourcesContent|SourceMap|lineLengths|realpathCache|Module\b|ModuleJob|script_or_debug_info|function_data|FeedbackVector|FeedbackCell|constant pool|ScopeInfo|synthetic|\(code|BytecodeArray|shared function info|object shape|^code|system \/ Map/;
  const kindOfNode = (n: number): string => {
    const k = kindOf(n);
    return code.test(k) ? 'compiled code, scripts and compiler data (first runs, not per connection)' : k;
  };

  const kinds = new Map<string, HeapKind>();
  for (let n = 0; n < count; n++) {
    const kind = kindOfNode(n);
    let k = kinds.get(kind);
    if (!k) kinds.set(kind, (k = { kind, count: 0, bytes: 0 }));
    k.count++;
    k.bytes += nodes[n * nf + nSize];
  }
  return kinds;
}

export interface HeapGrowth {
  kind: string;
  /** objects added per connection */
  perConnection: number;
  bytesPerConnection: number;
}

/** The kinds that grew by more than `minBytes` per connection between the two snapshots, largest first. */
export function heapGrowth(before: string, after: string, connections: number, minBytes = 2): { total: number; rows: HeapGrowth[] } {
  const a = heapKinds(before);
  const b = heapKinds(after);
  const rows: HeapGrowth[] = [];
  let total = 0;
  for (const [kind, k] of b) {
    const was = a.get(kind) ?? { count: 0, bytes: 0 };
    const bytes = (k.bytes - was.bytes) / connections;
    total += bytes;
    if (Math.abs(bytes) >= minBytes) rows.push({ kind, perConnection: (k.count - was.count) / connections, bytesPerConnection: bytes });
  }
  for (const [kind, k] of a) if (!b.has(kind)) total -= k.bytes / connections;
  rows.sort((x, y) => y.bytesPerConnection - x.bytesPerConnection);
  return { total, rows };
}

export function formatHeapGrowth(g: { total: number; rows: HeapGrowth[] }): string {
  const lines = ['| kind of heap object (← what holds it) | per connection | bytes / connection |', '|---|---:|---:|'];
  let shown = 0;
  for (const r of g.rows) {
    lines.push(`| \`${r.kind.replace(/\|/g, '\\|')}\` | ${r.perConnection.toFixed(2)} | ${r.bytesPerConnection.toFixed(0)} |`);
    shown += r.bytesPerConnection;
  }
  lines.push(`| the rest (kinds under 2 bytes each) | | ${(g.total - shown).toFixed(0)} |`);
  lines.push(`| **V8 heap, total** | | **${g.total.toFixed(0)}** |`);
  return lines.join('\n');
}

if (isMain(import.meta.url)) {
  const [before, after, n] = process.argv.slice(2);
  if (!before || !after || !Number(n)) {
    console.error('usage: memory-heap.ts <before.heapsnapshot> <after.heapsnapshot> <connections>');
    process.exit(2);
  }
  console.log(formatHeapGrowth(heapGrowth(before, after, Number(n))));
}
