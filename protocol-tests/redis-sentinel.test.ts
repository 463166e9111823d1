// Redis Sentinel (issue 22): one primary, two replicas, three sentinels; the primary SIGKILLed under
// traffic. Both ripple nodes follow the promoted replica without a restart: the clients stay connected,
// the opted-in client gets every event once and in order or is told (recovered: false), cross-node
// delivery and presence work again, and /ready comes back.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startNode, type NodeHandle } from '../src/testing/harness.js';
import { startRedisSentinel, type RedisSentinelHandle } from '../src/testing/redis-sentinel.js';
import { eventually, sleep } from '../src/testing/eventually.js';
import { subscribeRecovering, type RecoveryOutcome } from '../src/testing/recovery.js';
import { RawClient, presenceAuth } from '../src/testing/raw-client.js';
import { rest } from '../src/testing/sign-rest.js';

const app = { id: 'sen', key: 'sen-key', secret: 'sen-secret' };
const apps = [{ ...app, recovery: { historySize: 5000, historyTtl: 300 } }];

let sentinel: RedisSentinelHandle;
let pub: NodeHandle;
let sub: NodeHandle;
const clients: RawClient[] = [];

before(async () => {
  sentinel = await startRedisSentinel();
  const config = (id: string) => ({ apps, nodeId: id, nodeLeaseMs: 4000, redisOptions: { sentinels: sentinel.sentinels, name: sentinel.name } });
  [pub, sub] = await Promise.all([startNode({ config: config('sen-pub') }), startNode({ config: config('sen-sub') })]);
});

after(async () => {
  for (const c of clients) c.ws.terminate();
  await Promise.all([pub, sub].filter(Boolean).map((n) => n.kill()));
  await sentinel?.stop();
});

async function connect(n: NodeHandle): Promise<RawClient> {
  const c = await RawClient.connect(n.port, app.key);
  clients.push(c);
  return c;
}

const eventsOf = (c: RawClient, channel: string) => c.frames.filter((f) => f.channel === channel && f.event === 'msg');
const outcomesOf = (c: RawClient, channel: string) =>
  c.frames.filter((f) => f.channel === channel && f.event === 'pusher_internal:ripple_recovery').map((f) => JSON.parse(f.data as string) as RecoveryOutcome);

async function send(batch: { name: string; channel: string; data: string }[]): Promise<void> {
  for (;;) {
    const res = await rest(pub.url, app, 'POST', `/apps/${app.id}/batch_events`, { batch });
    if (res.status === 200) return;
    await sleep(100);
  }
}

test('the Sentinel primary SIGKILLed under traffic: nodes follow the new primary without a restart, clients stay connected, nothing is lost silently', async () => {
  const channel = 'sen-feed';
  const positioned = await connect(sub);
  const plain = await connect(sub);
  await subscribeRecovering(positioned, channel);
  await plain.subscribe(channel);
  const first = await sentinel.primary();
  const total = 400;
  const start = Date.now();
  let killed: Promise<void> | undefined;
  for (let i = 0; i < total; i += 10) {
    if (i === 100) killed = sentinel.kill(first);
    await send(Array.from({ length: 10 }, (_, k) => ({ name: 'msg', channel, data: String(i + k) })));
    const due = start + ((i + 10) * 1000) / 100;
    if (due > Date.now()) await sleep(due - Date.now());
  }
  await killed;
  await eventually(async () => (await sentinel.primary()) !== first, { timeoutMs: 30_000, intervalMs: 200, retryThrows: true, what: 'a replica promoted' });
  await send([{ name: 'msg', channel, data: 'after' }]);
  await eventually(() => eventsOf(plain, channel).at(-1)?.data === 'after' && eventsOf(positioned, channel).at(-1)?.data === 'after', {
    timeoutMs: 30_000,
    what: 'the event sent after the failover reached both clients',
  });
  for (const c of [positioned, plain]) {
    assert.equal(c.ws.readyState, c.ws.OPEN, 'the client stayed connected');
    assert.equal(c.frames.filter((f) => f.event === 'pusher:connection_established').length, 1, 'no reconnect');
  }
  const got = eventsOf(positioned, channel).slice(0, -1).map((f) => Number(f.data));
  for (let i = 1; i < got.length; i++) assert.ok(got[i] > got[i - 1], `in order, once (${got[i - 1]} then ${got[i]})`);
  if (got.length !== total) assert.ok(outcomesOf(positioned, channel).some((o) => o.recovered === false), `${total - got.length} missing and the client was told`);
  const plainLost = total - new Set(eventsOf(plain, channel).slice(0, -1).map((f) => f.data)).size;
  console.log(`# sentinel failover: opted-in ${got.length}/${total}, plain lost ${plainLost}`);

  // Both nodes are ready again, and the cluster state works on the new primary: presence across nodes.
  await eventually(async () => (await fetch(`${pub.url}/ready`)).status === 200 && (await fetch(`${sub.url}/ready`)).status === 200, {
    timeoutMs: 20_000,
    what: 'both nodes ready',
  });
  const a = await connect(pub);
  const b = await connect(sub);
  const member = (c: RawClient, user: string) => {
    const data = JSON.stringify({ user_id: user });
    return c.subscribe('presence-sen', presenceAuth(app.key, app.secret, c.socketId, 'presence-sen', data), data);
  };
  await member(a, 'ann');
  await member(b, 'bob');
  assert.equal(JSON.parse((await a.nextEvent('pusher_internal:member_added', 'presence-sen', 10_000)).data as string).user_id, 'bob');
});
