// The relay in one process: a watch is announced to every node (here: this one) and renewed; events of
// the watched app reach its viewers, cut to DATA_CHARS; each viewer is told `watching` once, also one
// that comes when the app is watched already; the last viewer gone, nothing is listened to.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import type { NodeCommand } from '../backbone/backbone.js';
import { cut, DATA_CHARS, type ConsoleEvent } from './events.js';
import { ConsoleRelay, MemoryRelayTransport, WATCH_TTL_MS } from './relay.js';
import { ConsoleTap } from './tap.js';

test('a watch turns every node\'s tap on for the app; its events reach the viewers until they stop', async () => {
  const tap = new ConsoleTap('n1');
  const sent: NodeCommand[] = [];
  let relay: ConsoleRelay | undefined = undefined;
  const broadcast = (cmd: NodeCommand) => {
    sent.push(cmd);
    if (cmd.type === 'console-watch') relay!.command(cmd);
  };
  relay = new ConsoleRelay(tap, broadcast, new MemoryRelayTransport(), pino({ level: 'silent' }));
  const seen: ConsoleEvent[] = [];
  const stop = await relay.watch('a1', (ev) => seen.push(ev));
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(sent.map((c) => ({ ...c, viewer: typeof (c as { viewer?: unknown }).viewer })), [{ type: 'console-watch', appId: 'a1', ttlMs: WATCH_TTL_MS, viewer: 'string' }]);
  assert.equal(tap.on && tap.watches('a1'), true);
  assert.deepEqual(seen.map((e) => e.type), ['watching']);
  tap.emit({ type: 'api_message', appId: 'a1', data: cut('x'.repeat(DATA_CHARS + 10)) });
  tap.emit({ type: 'api_message', appId: 'a2' });
  assert.equal(seen.length, 2, 'only the watched app\'s events');
  assert.equal(seen[1].data!.length, DATA_CHARS + 1, 'the data is cut (with an ellipsis)');
  stop();
  tap.emit({ type: 'api_message', appId: 'a1' });
  assert.equal(seen.length, 2, 'nothing after the viewer stopped');
  await relay.close();
  assert.equal(tap.on, false);
});

test('a watch command without a usable ttl is ignored', async () => {
  const tap = new ConsoleTap('n2');
  const relay = new ConsoleRelay(tap, () => {}, new MemoryRelayTransport(), pino({ level: 'silent' }));
  relay.command({ type: 'console-watch', appId: 'a1', ttlMs: 0 });
  relay.command({ type: 'console-watch', appId: 'a1', ttlMs: 'soon' as unknown as number });
  assert.equal(tap.on, false);
  await relay.close();
});

test('every viewer is told once that the node streams the app: those that open together, and one that opens later', async () => {
  const tap = new ConsoleTap('n3');
  let relay: ConsoleRelay | undefined = undefined;
  const greeted: string[] = [];
  relay = new ConsoleRelay(tap, (cmd) => cmd.type === 'console-watch' && relay!.command(cmd), new MemoryRelayTransport(), pino({ level: 'silent' }), (appId) => greeted.push(appId));
  const seen: ConsoleEvent[][] = [[], [], []];
  const watching = (i: number) => seen[i].filter((e) => e.type === 'watching');
  // Two open before the relay listens: the watch begins with the first one's command, and both hear it.
  const [s1, s2] = await Promise.all([relay.watch('a1', (ev) => seen[0].push(ev)), relay.watch('a1', (ev) => seen[1].push(ev))]);
  assert.deepEqual([watching(0).length, watching(1).length], [1, 1]);
  // One more, the app watched already: told alone.
  const s3 = await relay.watch('a1', (ev) => seen[2].push(ev));
  assert.deepEqual([watching(0).length, watching(1).length, watching(2).length], [1, 1, 1]);
  assert.equal(watching(2)[0].node, 'n3');
  assert.equal('to' in watching(2)[0] && watching(2)[0].to !== undefined, false, 'the viewer does not see whom it was for');
  assert.deepEqual(greeted, ['a1', 'a1', 'a1'], 'each new viewer is greeted (the overview\'s samples so far)');
  tap.emit({ type: 'api_message', appId: 'a1' });
  assert.deepEqual(seen.map((s) => s.length), [2, 2, 2]);
  for (const stop of [s1, s2, s3]) stop();
  await relay.close();
});
