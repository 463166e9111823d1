// The relay in one process: a watch is announced to every node (here: this one) and renewed; events of
// the watched app reach its viewers, cut to DATA_CHARS; the last viewer gone, nothing is listened to.
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
  assert.deepEqual(sent, [{ type: 'console-watch', appId: 'a1', ttlMs: WATCH_TTL_MS }]);
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
