// Webhook signing against the verified vector of spec §10.1, and the retry backoff's bounds.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import PusherServer from 'pusher';
import { signWebhook, webhookBody } from './send.js';
import { backoffDelay } from './delivery.js';

test('the signature matches the pusher SDK vector of spec §10.1, and the SDK validates it', () => {
  const body = '{"time_ms":1403175510755,"events":[{"channel":"test_channel","name":"channel_vacated"}]}';
  assert.equal(webhookBody([{ channel: 'test_channel', name: 'channel_vacated' }], 1403175510755), body);
  const sig = signWebhook('tofu', body);
  assert.equal(sig, 'c17257e92037cd7de407ebc1ed174ceb7b2e518db127f44411b9ffc4f5b28cc5');
  const sdk = new PusherServer({ appId: '1', key: '123456789', secret: 'tofu', host: '127.0.0.1' });
  const headers = { 'x-pusher-key': '123456789', 'x-pusher-signature': sig, 'content-type': 'application/json' };
  assert.ok(sdk.webhook({ headers, rawBody: body }).isValid());
  assert.ok(!sdk.webhook({ headers: { ...headers, 'x-pusher-signature': signWebhook('tofu!', body) }, rawBody: body }).isValid());
});

test('retry delays double from 250 ms, carry jitter, and stay under the 1 s cap', () => {
  assert.equal(backoffDelay(1, () => 1), 250);
  assert.equal(backoffDelay(1, () => 0), 125);
  assert.equal(backoffDelay(2, () => 1), 500);
  assert.equal(backoffDelay(3, () => 1), 1000);
  assert.equal(backoffDelay(20, () => 1), 1000);
  assert.equal(backoffDelay(1000, () => 0), 500);
  const seen = new Set(Array.from({ length: 50 }, () => backoffDelay(5)));
  assert.ok(seen.size > 10, 'jittered');
  for (const d of seen) assert.ok(d >= 500 && d <= 1000);
});
