import { test } from 'node:test';
import assert from 'node:assert/strict';
import { eventually, waitUntil } from './eventually.js';

test('eventually resolves once the check holds, polling every intervalMs', async () => {
  let calls = 0;
  await eventually(() => ++calls === 3, { timeoutMs: 1000, intervalMs: 5, what: 'third call' });
  assert.equal(calls, 3);
});

test('eventually rejects at the deadline naming what it waited for, with the state at the deadline', async () => {
  let n = 0;
  const started = Date.now();
  await assert.rejects(
    eventually(
      () => {
        n++;
        return false;
      },
      { timeoutMs: 100, intervalMs: 10, what: () => `n is ${n}` },
    ),
    (err: Error) => {
      assert.match(err.message, /^not within 100 ms: n is \d+$/);
      assert.ok(n > 1, 'it retried');
      return true;
    },
  );
  assert.ok(Date.now() - started >= 100, 'not before the deadline');
});

test('a check that throws fails at once unless retryThrows is set', async () => {
  let calls = 0;
  const boom = () => {
    calls++;
    throw new Error('boom');
  };
  await assert.rejects(eventually(boom, { timeoutMs: 5000, what: 'never' }), /^Error: boom$/);
  assert.equal(calls, 1);

  calls = 0;
  await assert.rejects(eventually(boom, { timeoutMs: 50, intervalMs: 5, retryThrows: true, what: 'boom stops' }), (err: Error) => {
    assert.equal(err.message, 'not within 50 ms: boom stops\nlast error: boom');
    return true;
  });
  assert.ok(calls > 1);
});

test('with retryThrows an assertion-style check holds once it stops throwing', async () => {
  let calls = 0;
  await eventually(
    () => {
      calls++;
      assert.ok(calls >= 3, 'not yet');
    },
    { timeoutMs: 1000, intervalMs: 5, retryThrows: true, what: 'assertion passes' },
  );
  assert.equal(calls, 3);
});

test('waitUntil resolves whether the check held and never rejects at the deadline', async () => {
  assert.equal(await waitUntil(() => false, { timeoutMs: 30, intervalMs: 5 }), false);
  let calls = 0;
  assert.equal(await waitUntil(async () => ++calls === 2, { timeoutMs: 1000, intervalMs: 5 }), true);
});
