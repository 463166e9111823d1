// One viewer's stream: filters, the rate bound with its skipped count, and backpressure.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { eventually } from '../testing/eventually.js';
import type { ConsoleEvent } from './events.js';
import { ConsoleStream, MAX_RATE, rateOf } from './stream.js';

const ev = (type: ConsoleEvent['type'], channel?: string): ConsoleEvent => ({ type, appId: 'a1', time: 0, node: 'n', channel });

test('over the rate, or while the connection is full, events are counted and reported as skipped', async () => {
  const out: string[] = [];
  let full = false;
  const s = new ConsoleStream((c) => (out.push(c), !full), 2, {});
  for (let i = 0; i < 5; i++) s.push(ev('subscribed'), JSON.stringify(ev('subscribed')));
  assert.equal(out.length, 2);
  s.push(ev('stats'), '{"type":"stats"}');
  assert.equal(out.length, 3, 'the overview\'s samples do not count against the rate');
  await eventually(() => out.some((c) => c.includes('"skipped"')), { timeoutMs: 5000, what: 'the skipped record' });
  assert.equal(JSON.parse(out.find((c) => c.includes('"skipped"'))!.slice(6)).count, 3);
  full = true;
  s.push(ev('subscribed'), '{}');
  s.push(ev('subscribed'), '{}');
  const written = out.length;
  s.writable();
  s.push(ev('subscribed'), '{}');
  assert.equal(out.length, written + 1, 'writing goes on once the connection took what waited');
  s.close();
});

test('filters by type and channel; the rate asked for is kept within 1..MAX_RATE', () => {
  const out: string[] = [];
  const s = new ConsoleStream((c) => (out.push(c), true), 100, { types: new Set(['api_message']), channel: 'c1' });
  s.push(ev('subscribed', 'c1'), 'a');
  s.push(ev('api_message', 'c2'), 'b');
  s.push({ ...ev('api_message'), channels: ['c0', 'c1'] }, 'c');
  s.push(ev('api_message', 'c1'), 'd');
  assert.deepEqual(out, ['data: c\n\n', 'data: d\n\n']);
  s.close();
  assert.deepEqual([rateOf(null), rateOf('0'), rateOf('5'), rateOf('99999'), rateOf('x')], [100, 1, 5, MAX_RATE, 100]);
});
