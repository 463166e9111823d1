// The recovery hold (docs/recovery.md) in one process: events published while a recovering
// subscribe's history read is in flight reach it once, after the outcome; more than a hold keeps
// closes the connection with 4200 so the client reconnects and recovers again.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChannelHistory, HistoryPage, HistoryPolicy } from '../history/history.js';
import * as frames from '../protocol/frames.js';
import { flush, memoryNode } from '../testing/memory-node.js';
import type { MemoryConnection } from '../transport/memory.js';
import { HOLD_MARGIN } from './recovery.js';

/** The engine's history, answering only when released: the window in which live events must be held. */
class GatedHistory implements ChannelHistory {
  private gate?: () => void;
  inner?: ChannelHistory;
  async read(appId: string, channel: string, afterSerial: number, limit: number, policy: HistoryPolicy): Promise<HistoryPage> {
    const page = await this.inner!.read(appId, channel, afterSerial, limit, policy);
    await new Promise<void>((r) => (this.gate = r));
    return page;
  }
  open(): void {
    this.gate?.();
  }
}

const recoveringApp = { id: 'a1', key: 'k1', secret: 's1', recovery: { historySize: 10, historyTtl: 60 } };

async function setup() {
  const gated = new GatedHistory();
  const n = await memoryNode([recoveringApp], { history: gated });
  gated.inner = n.engine.history;
  const publish = (i: number) => n.channels.publishEvent(n.registry.findById('a1')!, 'room', frames.channelEvent('msg', 'room', `m${i}`));
  return { n, gated, publish };
}

const msgs = (c: MemoryConnection) => c.frames().filter((f) => f.event === 'msg') as { data: string; ripple_position?: string }[];

test('events published while the history is read arrive once, after the outcome, in order', async () => {
  const { n, gated, publish } = await setup();
  const a = await n.connect();
  publish(1);
  publish(2);
  a.send({ event: 'pusher:subscribe', data: { channel: 'room', ripple_recovery: { position: 'nope:0' } } });
  await flush();
  publish(3); // after the read's snapshot: must come from the hold
  publish(4);
  assert.deepEqual(msgs(a.conn), [], 'nothing before the outcome');
  gated.open();
  await flush();
  const fs = a.conn.frames();
  const outcomeAt = fs.findIndex((f) => f.event === 'pusher_internal:ripple_recovery');
  assert.ok(outcomeAt > 0);
  assert.deepEqual(msgs(a.conn).map((f) => f.data), ['m3', 'm4']);
  assert.ok(fs.findIndex((f) => f.event === 'msg') > outcomeAt, 'held events follow the outcome');
  publish(5);
  assert.deepEqual(msgs(a.conn).map((f) => [f.data, f.ripple_position?.split(':')[1]]), [['m3', '3'], ['m4', '4'], ['m5', '5']]);
});

test('a hold that overflows closes the connection with 4200 (reconnect now) instead of dropping events', async () => {
  const { n, gated, publish } = await setup();
  const a = await n.connect();
  a.send({ event: 'pusher:subscribe', data: { channel: 'room', ripple_recovery: {} } });
  await flush();
  for (let i = 0; i < 10 + HOLD_MARGIN + 1; i++) publish(i);
  gated.open();
  await flush();
  assert.equal(a.conn.closeCode, 4200);
});

test('a subscription that ends while its history is read leaves no hold behind', async () => {
  const { n, gated, publish } = await setup();
  const a = await n.connect();
  const b = await n.connect();
  b.send({ event: 'pusher:subscribe', data: { channel: 'room' } });
  a.send({ event: 'pusher:subscribe', data: { channel: 'room', ripple_recovery: {} } });
  await flush();
  a.send({ event: 'pusher:unsubscribe', data: { channel: 'room' } });
  gated.open();
  await flush();
  publish(1);
  assert.deepEqual(msgs(a.conn), []);
  assert.equal(a.conn.frames().some((f) => f.event === 'pusher_internal:ripple_recovery'), false, 'no outcome after the unsubscribe');
  assert.deepEqual(msgs(b.conn).map((f) => f.data), ['m1']);
});
