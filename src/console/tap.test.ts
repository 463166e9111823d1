// The tap is off (one false flag) until an app is watched, and off again once every watch ran out.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { eventually } from '../testing/eventually.js';
import type { ConsoleEvent } from './events.js';
import { ConsoleTap } from './tap.js';

test('a watch turns the tap on for its app only, and it turns off by itself when the watch is not renewed', async () => {
  const got: ConsoleEvent[] = [];
  const tap = new ConsoleTap('node-1');
  tap.connect({ publish: (e) => got.push(e) });
  assert.equal(tap.on, false);
  assert.equal(tap.watch('a1', 300), true, 'newly watched');
  assert.equal(tap.watch('a1', 300), false, 'a renewal');
  assert.equal(tap.on, true);
  assert.equal(tap.watches('a1'), true);
  assert.equal(tap.watches('a2'), false);
  tap.emit({ type: 'subscribed', appId: 'a1', channel: 'c' });
  assert.equal(got[0].node, 'node-1');
  assert.equal(typeof got[0].time, 'number');
  await eventually(() => !tap.on, { timeoutMs: 5000, what: 'the tap off after the watch ran out' });
  assert.equal(tap.watches('a1'), false);
  tap.close();
});
