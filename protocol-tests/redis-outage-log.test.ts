// Issue 23 point 9: what an operator reads during a Redis outage. A node with all three of its Redis
// connections (commands, subscriptions, the webhook doorbell) and a live client loses Redis for 17 s:
// it logs one line when the outage starts, a summary every 15 s while it lasts, and one line when
// Redis is back; not a warning per connection per reconnect attempt (about 50 in five seconds before).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startNode, startRedis, type NodeHandle, type RedisHandle } from '../src/testing/harness.js';
import { eventually, sleep } from '../src/testing/eventually.js';
import { RawClient } from '../src/testing/raw-client.js';
import { WebhookReceiver } from '../src/testing/webhook-receiver.js';

let redis: RedisHandle | undefined;
let node: NodeHandle | undefined;
let client: RawClient | undefined;
let receiver: WebhookReceiver | undefined;
after(async () => {
  await receiver?.stop();
  client?.ws.terminate();
  await node?.kill();
  await redis?.stop();
});

interface Line {
  level: number;
  msg: string;
  downForMs?: number;
  reconnectAttempts?: number;
}

test('a 17 s Redis outage: one warning when it starts, one summary at 15 s, one line when Redis is back, nothing per reconnect attempt', async () => {
  redis = await startRedis();
  // A webhook endpoint that takes every delivery: the node then holds its doorbell connection, and no
  // failed delivery adds a warning of its own (a restore after Redis came back empty may queue one).
  receiver = await WebhookReceiver.start();
  const app = { id: 'ol', key: 'ol-key', secret: 'ol-secret', webhooks: [{ url: receiver.url, event_types: ['channel_occupied'] }] };
  node = await startNode({ env: { REDIS_URL: redis.url, NODE_ID: 'outage-log', LOG_LEVEL: 'info' }, config: { apps: [app] } });
  client = await RawClient.connect(node.port, app.key);
  await client.subscribe('during-outage');
  await eventually(() => node!.output().includes('"msg":"redis connected"'), { timeoutMs: 5000, what: 'the node says Redis is connected, once' });
  const from = node.output().length;

  await redis.restart(17_000);
  await eventually(() => node!.output().slice(from).includes('redis reachable again'), { timeoutMs: 10_000, what: () => `the node says Redis is back:\n${node!.output().slice(from)}` });
  await sleep(2000);

  const lines = node
    .output()
    .slice(from)
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Line);
  const named = (prefix: string) => lines.filter((l) => l.msg.startsWith(prefix));
  const shown = JSON.stringify(lines.map((l) => `${l.level} ${l.msg}`), null, 1);
  assert.equal(named('redis unreachable').length, 1, `one line when it starts: ${shown}`);
  assert.equal(named('redis unreachable')[0].level, 40);
  const summaries = named('redis still unreachable');
  assert.equal(summaries.length, 1, `one summary (at 15 s): ${shown}`);
  assert.ok(summaries[0].downForMs! >= 15_000 && summaries[0].reconnectAttempts! > 0, JSON.stringify(summaries[0]));
  const back = named('redis reachable again');
  assert.equal(back.length, 1, `one line when it ends: ${shown}`);
  assert.equal(back[0].level, 30);
  assert.ok(back[0].downForMs! >= 16_000, JSON.stringify(back[0]));
  // Nothing else at warn or above, but that Redis came back empty (it restarted without persistence).
  const otherWarnings = lines.filter((l) => l.level >= 40 && !/^redis (still )?unreachable|^Redis lost the cluster state/.test(l.msg));
  assert.deepEqual(otherWarnings.map((l) => l.msg), []);
  assert.ok(lines.length <= 8, `a handful of lines for the whole outage: ${shown}`);

  // And the node is whole again.
  const ready = await fetch(`${node.url}/ready`);
  assert.equal(ready.status, 200);
});
