// The overview's samples: per app, per second, kept for 15 minutes; a watched app's go to the console
// (the whole history when the watch begins, then each new one; a stream that opens later gets the
// history for itself).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ConsoleEvent } from './events.js';
import { KEPT_SAMPLES, SAMPLE_MS, TrafficHistory } from './overview.js';
import { ConsoleTap } from './tap.js';

test('samples are rates over 5 s, at most 15 minutes of them go out, and a new watch gets the history first', () => {
  const tap = new ConsoleTap('n1');
  const got: ConsoleEvent[] = [];
  tap.connect({ publish: (e) => got.push(e) });
  const traffic = { messagesIn: 0, messagesOut: 0 };
  const h = new TrafficHistory({ connections: () => new Map([['a1', 3]]), traffic: () => traffic }, tap);
  for (let i = 1; i <= KEPT_SAMPLES + 10; i++) {
    traffic.messagesIn += 10;
    traffic.messagesOut += 50;
    h.sample(i * SAMPLE_MS);
  }
  assert.equal(got.length, 0, 'nothing goes out while nobody watches');
  tap.watch('a1', 60_000);
  h.sample((KEPT_SAMPLES + 11) * SAMPLE_MS);
  assert.equal(got.length, 1);
  assert.equal(got[0].type, 'stats');
  assert.equal(got[0].stats!.length, KEPT_SAMPLES, 'the last 15 minutes');
  assert.deepEqual(got[0].stats![KEPT_SAMPLES - 2], { t: (KEPT_SAMPLES + 10) * SAMPLE_MS, connections: 3, inPerSecond: 2, outPerSecond: 10 });
  h.sample((KEPT_SAMPLES + 12) * SAMPLE_MS);
  assert.equal(got[1].stats!.length, 1, 'then one sample at a time');
  tap.close();
});

test('a watched app with no connection on this node is sampled too (its node shows on the charts)', () => {
  const tap = new ConsoleTap('n2');
  const got: ConsoleEvent[] = [];
  tap.connect({ publish: (e) => got.push(e) });
  tap.watch('a9', 60_000);
  const h = new TrafficHistory({ connections: () => new Map(), traffic: () => ({ messagesIn: 0, messagesOut: 0 }) }, tap);
  h.sample(SAMPLE_MS);
  assert.deepEqual(got.map((e) => [e.appId, e.stats![0].connections]), [['a9', 0]]);
  tap.close();
});

test('a console stream that opens on an app watched already gets the samples so far, for itself alone', () => {
  const tap = new ConsoleTap('n3');
  const got: ConsoleEvent[] = [];
  tap.connect({ publish: (e) => got.push(e) });
  const h = new TrafficHistory({ connections: () => new Map([['a1', 1]]), traffic: () => ({ messagesIn: 0, messagesOut: 0 }) }, tap);
  h.sample(SAMPLE_MS);
  h.sample(2 * SAMPLE_MS);
  tap.watch('a1', 60_000);
  h.greet('a1', 'early');
  assert.equal(got.length, 0, 'before the next sample, which sends the history to every stream');
  h.sample(3 * SAMPLE_MS);
  assert.deepEqual(got.map((e) => [e.stats!.length, e.to]), [[3, undefined]]);
  h.greet('a1', 'late');
  assert.deepEqual(got.map((e) => [e.stats!.length, e.to]), [[3, undefined], [3, 'late']]);
  h.greet('a2', 'other');
  assert.equal(got.length, 2, 'an app with no samples here: nothing');
  tap.close();
});
