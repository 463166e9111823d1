// The hub's channel with a single subscription on the node: no topic, its frames sent to that
// connection; a second subscription puts both in the channel's topic, and recovery's topics work as
// before. Through the in-process transport, whose topic membership can be read.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AppTraffic } from '../metrics/metrics.js';
import { MemoryFanout, type MemoryConnection } from '../transport/memory.js';
import { Hub } from './hub.js';

function setup() {
  const traffic: AppTraffic = { messagesIn: 0, bytesIn: 0, messagesOut: 0, bytesOut: 0 };
  const hub = new Hub({ traffic: () => traffic });
  const fanout = new MemoryFanout();
  hub.addFanout(fanout);
  const bySocketId = new Map<string, MemoryConnection>();
  hub.useIndex({ connection: (_app, socketId) => bySocketId.get(socketId) });
  const conn = (socketId: string) => {
    const c = fanout.connect();
    bySocketId.set(socketId, c);
    return c;
  };
  /** How many connections are in the topic(s) of `channel` (plain and positioned). */
  const inTopics = (channel: string) => [...((fanout.topics as unknown as { byTopic: Map<string, Set<MemoryConnection>> }).byTopic)].filter(([t]) => t.includes(channel)).reduce((n, [, s]) => n + s.size, 0);
  return { hub, traffic, conn, inTopics };
}

test('a channel with one subscription on the node has no topic; the frames reach it, but not when it sent them, and are counted as before', () => {
  const { hub, traffic, conn, inTopics } = setup();
  const a = conn('1.1');
  assert.equal(hub.join(a, 'app', 'ch'), true, 'the first subscription');
  assert.equal(inTopics('ch'), 0, 'no topic for one subscription');
  hub.deliver('app', 'ch', 'f1');
  hub.deliver('app', 'ch', 'f2', '1.1');
  hub.deliver('app', 'other', 'nobody');
  assert.deepEqual(a.sent, ['f1']);
  assert.equal(traffic.messagesOut, 2, 'counted as a topic of one counts it, the sender included');
  assert.equal(traffic.bytesOut, 4);
  assert.equal(hub.leave(a, 'app', 'ch'), true, 'the last subscription');
  hub.deliver('app', 'ch', 'f3');
  assert.deepEqual(a.sent, ['f1']);
});

test('a second subscription puts both in the topic; after either leaves, the other still gets every frame', () => {
  const { hub, conn, inTopics } = setup();
  const a = conn('1.1');
  const b = conn('2.1');
  hub.join(a, 'app', 'ch');
  assert.equal(hub.join(b, 'app', 'ch'), false, 'not the first');
  assert.equal(inTopics('ch'), 2);
  hub.deliver('app', 'ch', 'f1');
  hub.deliver('app', 'ch', 'f2', '2.1');
  assert.deepEqual(a.sent, ['f1', 'f2']);
  assert.deepEqual(b.sent, ['f1']);
  assert.equal(hub.leave(a, 'app', 'ch'), false);
  hub.deliver('app', 'ch', 'f3');
  assert.deepEqual(b.sent, ['f1', 'f3']);
  assert.deepEqual(a.sent, ['f1', 'f2']);
  assert.equal(hub.leave(b, 'app', 'ch'), true);
  assert.equal(inTopics('ch'), 0);
});

test('a connection that is not the channel\'s one subscription leaving it changes nothing', () => {
  const { hub, conn } = setup();
  const a = conn('1.1');
  const b = conn('2.1');
  hub.join(a, 'app', 'ch');
  assert.equal(hub.leave(b, 'app', 'ch'), false);
  hub.deliver('app', 'ch', 'f1');
  assert.deepEqual(a.sent, ['f1']);
});

test('an opted-in subscription beside a single plain one: the plain one joins the topic, each gets its frames', () => {
  const { hub, conn, inTopics } = setup();
  const plain = conn('1.1');
  const positioned = conn('2.1');
  hub.join(plain, 'app', 'ch');
  hub.join(positioned, 'app', 'ch', true);
  assert.equal(inTopics('ch'), 2, 'the plain one in the plain topic, the other in the positioned one');
  hub.deliver('app', 'ch', '{"event":"e","channel":"ch","data":"1"}', undefined, 'ep:1');
  assert.equal(plain.sent.length, 1);
  assert.equal(positioned.sent.length, 1);
  assert.match(positioned.sent[0], /ep:1/);
  assert.equal(hub.position('app', 'ch'), 'ep:1');
  assert.equal(hub.leave(positioned, 'app', 'ch', true), false);
  hub.deliver('app', 'ch', 'f2');
  assert.deepEqual(plain.sent.slice(1), ['f2']);
});

test('recorded events on a channel with a single plain subscription: once each, from this node and from others, and the channel keeps the position', () => {
  const { hub, conn } = setup();
  const a = conn('1.1');
  hub.join(a, 'app', 'ch');
  // This node's own: its plain subscriptions get it when published, its opted-in ones when Redis hands it back.
  hub.deliver('app', 'ch', 'f1', undefined, undefined, undefined, 'plain');
  hub.deliver('app', 'ch', 'f1', undefined, 'ep:1', undefined, 'positioned');
  // Another node's: everyone gets it on receipt.
  hub.deliver('app', 'ch', 'f2', undefined, 'ep:2');
  assert.deepEqual(a.sent, ['f1', 'f2']);
  assert.equal(hub.position('app', 'ch'), 'ep:2');
});
