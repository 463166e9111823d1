// The recovery hold (docs/recovery.md) in one process: events published while a recovering
// subscribe's history read is in flight reach it once, after the outcome; more than a hold keeps
// closes the connection with 4200 so the client reconnects and recovers again; an event that never
// reached the node but is in the history is found missing and refilled.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChannelHistory, HistoryPage, HistoryPolicy } from '../history/history.js';
import * as frames from '../protocol/frames.js';
import { flush, memoryNode } from '../testing/memory-node.js';
import type { MemoryConnection } from '../transport/memory.js';
import type { MemoryHistory } from '../history/memory.js';
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

/** Records an event in the channel's history that no subscription is sent (a message lost on its way to a node). */
function recordUnseen(n: Awaited<ReturnType<typeof setup>>['n'], i: number): void {
  (n.engine.history as MemoryHistory).record('a1', 'room', frames.channelEvent('msg', 'room', `m${i}`), undefined, { size: 10, ttlMs: 60_000 });
}

const positioned = (c: MemoryConnection) => msgs(c).map((f) => [f.data, Number(f.ripple_position?.split(':')[1])]);
const outcomes = (c: MemoryConnection) => c.frames().filter((f) => f.event === 'pusher_internal:ripple_recovery').map((f) => JSON.parse(f.data as string) as { recovered?: boolean; replayed?: number });

test('an event missing from a recovering subscribe\'s hold (after its history read, before the next held one): it reads again, and gets every event once, in order', async () => {
  const { n, gated, publish } = await setup();
  publish(1);
  const { epoch } = await n.engine.history.read('a1', 'room', 0, 0, { size: 10, ttlMs: 60_000 });
  const a = await n.connect();
  a.send({ event: 'pusher:subscribe', data: { channel: 'room', ripple_recovery: { position: `${epoch}:1` } } });
  await flush(); // its read has counted up to 1
  recordUnseen(n, 2);
  publish(3); // held
  gated.open();
  await flush();
  gated.open(); // the second read
  await flush();
  publish(4);
  assert.deepEqual(positioned(a.conn), [['m2', 2], ['m3', 3], ['m4', 4]]);
  assert.deepEqual(outcomes(a.conn).map((o) => [o.recovered, o.replayed]), [[true, 2]]);
});

test("a replay that reaches past what the channel's opted-in subscriptions were sent: they are held and refilled from the history, and the gap is counted", async () => {
  const { n, gated, publish } = await setup();
  const a = await n.connect();
  a.send({ event: 'pusher:subscribe', data: { channel: 'room', ripple_recovery: {} } });
  await flush();
  gated.open();
  await flush();
  publish(1);
  recordUnseen(n, 2);
  const b = await n.connect();
  b.send({ event: 'pusher:subscribe', data: { channel: 'room', ripple_recovery: {} } });
  await flush();
  gated.open(); // b's read counts 2: a missed it
  await flush();
  gated.open(); // a's refill
  await flush();
  publish(3);
  assert.deepEqual(positioned(a.conn), [['m1', 1], ['m2', 2], ['m3', 3]]);
  assert.deepEqual(positioned(b.conn), [['m3', 3]]);
  assert.equal(outcomes(a.conn).length, 1, "a refill that filled the gap is silent");
  const text = await n.metrics.registry.metrics();
  assert.match(text, /ripple_recovery_channel_gaps_total\{app="a1"\} 1/);
});
