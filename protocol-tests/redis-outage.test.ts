// Redis outages in cluster mode (issue 11, points 1 and 2): a node accepts only what it can deliver and
// delivers what it accepted, exactly once and in order, across a Redis SIGKILL and restart; what it
// cannot keep is refused (HTTP 503, pusher:error 4301) and never delivered; presence member lists and
// webhooks catch up with what happened meanwhile.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, Socket, type Server } from 'node:net';
import { freePort, startNode, startRedis, type NodeHandle, type RedisHandle } from '../src/testing/harness.js';
import { eventually, sleep } from '../src/testing/eventually.js';
import { RawClient, presenceAuth, privateAuth, type Frame } from '../src/testing/raw-client.js';
import { rest } from '../src/testing/sign-rest.js';
import { WebhookReceiver } from '../src/testing/webhook-receiver.js';

const app = { id: 'outage-app', key: 'outage-key', secret: 'outage-secret' };
const redises: RedisHandle[] = [];
const nodes: NodeHandle[] = [];
const clients: RawClient[] = [];
const receivers: WebhookReceiver[] = [];
const relays: RedisRelay[] = [];

after(async () => {
  for (const c of clients) c.ws.terminate();
  await Promise.all(nodes.map((n) => n.kill()));
  await Promise.all(receivers.map((r) => r.stop()));
  for (const r of relays) r.close();
  await Promise.all(redises.map((r) => r.stop()));
});

async function redisServer(): Promise<RedisHandle> {
  const r = await startRedis();
  redises.push(r);
  return r;
}

async function node(redis: RedisHandle, id: string, env: Record<string, string> = {}, config?: unknown): Promise<NodeHandle> {
  const n = await startNode({
    config: config ?? { apps: [{ ...app, enableClientMessages: true, maxClientEventsPerSecond: -1 }] },
    env: { REDIS_URL: redis.url, NODE_ID: id, NODE_LEASE_MS: '2000', WEBHOOK_BATCH_MS: '20', ...env },
  });
  nodes.push(n);
  return n;
}

async function client(n: NodeHandle): Promise<RawClient> {
  const c = await RawClient.connect(n.port, app.key);
  clients.push(c);
  return c;
}

async function metric(n: NodeHandle, name: string): Promise<number> {
  const text = await (await fetch(`${n.url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line ? Number(line.split(' ')[1]) : NaN;
}

const trigger = (n: NodeHandle, channel: string, data: string) => rest(n.url, app, 'POST', `/apps/${app.id}/events`, { name: 'tick', channel, data });

/** The `tick` events a client got, as "<origin>:<n>" strings in arrival order. */
const ticks = (c: RawClient) => c.frames.filter((f) => f.event === 'tick').map((f) => f.data as string);

test('Redis SIGKILLed and restarted under steady REST traffic on two nodes: every 200 is delivered once and in order on both nodes, every 503 never', async () => {
  const redis = await redisServer();
  // A buffer small enough that a 3 s outage at this rate fills it.
  const env = { BACKBONE_BUFFER_EVENTS: '60' };
  const [a, b] = await Promise.all([node(redis, 'steady-a', env), node(redis, 'steady-b', env)]);
  const onA = await client(a);
  const onB = await client(b);
  await Promise.all([onA.subscribe('steady'), onB.subscribe('steady')]);
  // Both nodes see each other's traffic before the test starts.
  await eventually(
    async () => {
      await trigger(a, 'steady', 'warm');
      await trigger(b, 'steady', 'warm');
      return ticks(onA).filter((t) => t === 'warm').length >= 2 && ticks(onB).filter((t) => t === 'warm').length >= 2;
    },
    { timeoutMs: 5000, what: 'cross-node delivery before the outage' },
  );
  const accepted: Record<string, string[]> = { a: [], b: [] };
  const refused: Record<string, string[]> = { a: [], b: [] };
  const other: string[] = [];
  let running = true;
  const publisher = async (origin: 'a' | 'b', n: NodeHandle) => {
    for (let i = 0; running && i < 5000; i++) {
      const data = `${origin}:${i}`;
      const res = await trigger(n, 'steady', data);
      if (res.status === 200) accepted[origin].push(data);
      else if (res.status === 503 && res.body.code === 503 && typeof res.body.error === 'string') refused[origin].push(data);
      else other.push(`${data}: ${res.status} ${JSON.stringify(res.body)}`);
      await sleep(10);
    }
  };
  const publishing = Promise.all([publisher('a', a), publisher('b', b)]);
  await sleep(1000);
  await redis.stop(); // SIGKILL
  await sleep(3000);
  // Local subscribers were served all along: everything accepted on a node already reached its own socket.
  const localA = new Set(ticks(onA));
  const localB = new Set(ticks(onB));
  assert.ok(accepted.a.every((d) => localA.has(d)) && accepted.b.every((d) => localB.has(d)), 'local delivery went on during the outage');
  await redis.restart();
  await sleep(4000);
  running = false;
  await publishing;
  assert.deepEqual(other, [], 'every answer is 200 or a JSON 503');
  const expected = (origin: string) => accepted[origin];
  const got = (c: RawClient, origin: string) => ticks(c).filter((t) => t.startsWith(`${origin}:`));
  await eventually(
    () => [onA, onB].every((c) => got(c, 'a').length >= expected('a').length && got(c, 'b').length >= expected('b').length),
    { timeoutMs: 20_000, what: () => `every accepted event on both sockets (a: ${got(onA, 'a').length}+${got(onA, 'b').length}, b: ${got(onB, 'a').length}+${got(onB, 'b').length} of ${expected('a').length}+${expected('b').length})` },
  );
  await sleep(500);
  for (const [name, c] of [['socket on a', onA], ['socket on b', onB]] as const) {
    assert.deepEqual(got(c, 'a'), expected('a'), `${name}: node a's accepted events, once each, in order, and none of its refused ones`);
    assert.deepEqual(got(c, 'b'), expected('b'), `${name}: node b's accepted events, once each, in order, and none of its refused ones`);
  }
  assert.ok(refused.a.length > 0 && refused.b.length > 0, `the buffer filled on both nodes (refused ${refused.a.length} on a, ${refused.b.length} on b)`);
  assert.equal(await metric(a, 'ripple_backbone_refused_total'), refused.a.length, 'refusals are counted');
  assert.equal(await metric(b, 'ripple_backbone_refused_total'), refused.b.length);
  assert.equal(await metric(a, 'ripple_backbone_buffer_events'), 0, 'the buffer drained');
  console.log(`accepted a=${accepted.a.length} b=${accepted.b.length}, refused a=${refused.a.length} b=${refused.b.length}`);
});

test('the outage buffer\'s limits: events, bytes and age; a batch is refused whole; a client event gets pusher:error 4301', async () => {
  const redis = await redisServer();
  const byCount = await node(redis, 'limit-count', { BACKBONE_BUFFER_EVENTS: '5' });
  const byBytes = await node(redis, 'limit-bytes', { BACKBONE_BUFFER_BYTES: '3000' });
  const byAge = await node(redis, 'limit-age', { BACKBONE_BUFFER_MAX_AGE_MS: '1000' });
  const watch = await client(byCount);
  await watch.subscribe('limits');
  const sender = await client(byCount);
  await sender.subscribe('private-limits', privateAuth(app.key, app.secret, sender.socketId, 'private-limits'));
  await watch.subscribe('private-limits', privateAuth(app.key, app.secret, watch.socketId, 'private-limits'));
  await redis.stop();
  await eventually(async () => (await fetch(`${byCount.url}/ready`)).status === 503, { timeoutMs: 5000, what: 'the node sees Redis down' });

  // Count: 3 single events and a batch of 2 fit in 5; a batch of 3 after 3 does not, and none of it is delivered.
  for (let i = 0; i < 3; i++) assert.equal((await trigger(byCount, 'limits', `one-${i}`)).status, 200);
  const batch = (names: string[]) => rest(byCount.url, app, 'POST', `/apps/${app.id}/batch_events`, { batch: names.map((data) => ({ name: 'tick', channel: 'limits', data })) });
  const tooBig = await batch(['b3-0', 'b3-1', 'b3-2']);
  assert.equal(tooBig.status, 503);
  assert.equal(tooBig.body.code, 503);
  assert.equal(tooBig.headers.get('retry-after'), '1');
  assert.equal((await batch(['b2-0', 'b2-1'])).status, 200);
  assert.equal((await trigger(byCount, 'limits', 'sixth')).status, 503);
  await sleep(100);
  assert.deepEqual(ticks(watch), ['one-0', 'one-1', 'one-2', 'b2-0', 'b2-1'], 'refused events never reach even local sockets');
  // A client event that does not fit: pusher:error 4301, not relayed.
  sender.send({ event: 'client-x', channel: 'private-limits', data: { n: 1 } });
  const err = await sender.nextEvent('pusher:error');
  assert.equal((err.data as { code: number }).code, 4301);
  assert.ok(await watch.nothing((f) => f.event === 'client-x', 200));
  assert.equal(await metric(byCount, 'ripple_backbone_refused_total'), 3 + 1 + 1);
  assert.equal(await metric(byCount, 'ripple_backbone_buffer_events'), 5);

  // Bytes: one 2 KB event fits in 3000 bytes, a second does not.
  const big = 'x'.repeat(2000);
  assert.equal((await trigger(byBytes, 'limits', big)).status, 200);
  assert.equal((await trigger(byBytes, 'limits', big)).status, 503);
  assert.equal((await trigger(byBytes, 'limits', 'small')).status, 200);

  // Age: room for many more, but once the oldest waits longer than 1 s new ones are refused.
  assert.equal((await trigger(byAge, 'limits', 'first')).status, 200);
  await sleep(1200);
  assert.equal((await trigger(byAge, 'limits', 'late')).status, 503);

  // Redis back: what was accepted goes out, and the nodes accept again.
  await redis.restart();
  await eventually(async () => (await fetch(`${byCount.url}/ready`)).status === 200, { timeoutMs: 10_000, what: 'ready again' });
  await eventually(async () => (await metric(byCount, 'ripple_backbone_buffer_events')) === 0 && (await metric(byAge, 'ripple_backbone_buffer_events')) === 0, { timeoutMs: 10_000, what: 'buffers drained' });
  assert.equal((await trigger(byAge, 'limits', 'after')).status, 200);
  assert.equal((await trigger(byCount, 'limits', 'after')).status, 200);
});

/**
 * A TCP relay between the nodes and Redis that the test can cut: Redis keeps running with its data,
 * the nodes only lose their connections (a network partition) until the relay is mended.
 */
class RedisRelay {
  private server?: Server;
  private readonly sockets = new Set<Socket>();
  private constructor(
    readonly port: number,
    private readonly target: number,
  ) {}
  static async start(target: RedisHandle): Promise<RedisRelay> {
    const relay = new RedisRelay(await freePort(), target.port);
    await relay.mend();
    relays.push(relay);
    return relay;
  }
  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }
  mend(): Promise<void> {
    this.server = createServer((inbound) => {
      const outbound = new Socket();
      for (const s of [inbound, outbound]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
        s.on('error', () => {});
      }
      outbound.connect(this.target, '127.0.0.1');
      inbound.pipe(outbound).pipe(inbound);
      inbound.on('close', () => outbound.destroy());
      outbound.on('close', () => inbound.destroy());
    });
    return new Promise((resolve) => this.server!.listen(this.port, '127.0.0.1', () => resolve()));
  }
  /** Drops every connection and refuses new ones. */
  cut(): void {
    this.close();
  }
  close(): void {
    this.server?.close();
    this.server = undefined;
    for (const s of this.sockets) s.destroy();
  }
}

/** What a client was told about a presence channel's members: the list it got, then each event. */
function told(c: RawClient, channel: string, from = 0): { members: Set<string>; added: string[]; removed: string[] } {
  const members = new Set<string>();
  const added: string[] = [];
  const removed: string[] = [];
  c.frames.forEach((f: Frame, i) => {
    if (f.channel !== channel) return;
    const data = typeof f.data === 'string' ? JSON.parse(f.data) : f.data;
    if (f.event === 'pusher_internal:subscription_succeeded') for (const id of data.presence.ids) members.add(id);
    if (f.event === 'pusher_internal:member_added') {
      members.add(data.user_id);
      if (i >= from) added.push(data.user_id);
    }
    if (f.event === 'pusher_internal:member_removed') {
      members.delete(data.user_id);
      if (i >= from) removed.push(data.user_id);
    }
  });
  return { members, added, removed };
}

const transitionTypes = ['channel_occupied', 'channel_vacated', 'member_added', 'member_removed'];

async function member(c: RawClient, channel: string, userId: string): Promise<void> {
  const data = JSON.stringify({ user_id: userId, user_info: { name: userId } });
  const f = await c.subscribe(channel, presenceAuth(app.key, app.secret, c.socketId, channel, data), data);
  assert.equal(f.event, 'pusher_internal:subscription_succeeded');
}

/**
 * Two nodes with presence members on both; while Redis cannot be reached some members leave (one of
 * them a user still connected through the other node), a public channel empties and another fills.
 * Afterwards every client's member list is the truth, it was told only what really changed, and the
 * webhooks of those changes (and only those) arrive.
 */
async function healsAfter(outage: { redisUrl: string; begin: () => Promise<void> | void; end: () => Promise<void> }, tag: string): Promise<void> {
  const hooks = await WebhookReceiver.start();
  receivers.push(hooks);
  const config = { apps: [{ ...app, webhooks: [{ url: hooks.url, event_types: transitionTypes }] }] };
  const env = { REDIS_URL: outage.redisUrl, NODE_LEASE_MS: '2000', WEBHOOK_BATCH_MS: '20' };
  const [a, b] = await Promise.all([
    startNode({ config, env: { ...env, NODE_ID: `${tag}-a` } }),
    startNode({ config, env: { ...env, NODE_ID: `${tag}-b` } }),
  ]);
  nodes.push(a, b);
  const ch = 'presence-heal';
  const [u1, u2, sA, g1, plainA] = await Promise.all([client(a), client(a), client(a), client(a), client(a)]);
  const [u3, u4, sB, g2, plainB] = await Promise.all([client(b), client(b), client(b), client(b), client(b)]);
  await member(u1, ch, 'u1');
  await member(u3, ch, 'u3');
  await member(u2, ch, 'u2');
  await member(u4, ch, 'u4');
  await member(sA, ch, 's');
  await member(sB, ch, 's');
  await member(g1, 'presence-gone', 'g1');
  await member(g2, 'presence-gone', 'g2');
  await plainA.subscribe('plain-gone');
  const everyone = ['u1', 'u2', 'u3', 'u4', 's'];
  await eventually(() => [u1, u3].every((c) => everyone.every((u) => told(c, ch).members.has(u))), { timeoutMs: 5000, what: 'the members before the outage' });
  await eventually(() => hooks.named('member_added').length === 7 && hooks.named('channel_occupied').length === 3, { timeoutMs: 5000, what: 'the webhooks before the outage' });
  const before = hooks.events().length;
  const mark = (c: RawClient) => c.frames.length;
  const from1 = mark(u1);
  const from3 = mark(u3);

  await outage.begin();
  await eventually(async () => (await fetch(`${a.url}/ready`)).status === 503 && (await fetch(`${b.url}/ready`)).status === 503, { timeoutMs: 5000, what: 'both nodes see Redis gone' });
  await Promise.all([u2.close(), sA.close(), u4.close(), g1.close(), g2.close(), plainA.close()]);
  assert.equal((await plainB.subscribe('plain-new')).event, 'pusher_internal:subscription_succeeded', 'a public subscription works without Redis');
  await sleep(1500);
  assert.deepEqual(told(u1, ch, from1).removed, [], 'nobody is told anything while no node knows the truth');
  await outage.end();
  const back = Date.now();

  const truth = ['s', 'u1', 'u3'];
  await eventually(() => [u1, u3].every((c) => [...told(c, ch).members].sort().join() === truth.join()), {
    timeoutMs: 15_000,
    what: () => `healed member lists (u1 sees ${[...told(u1, ch).members]}, u3 sees ${[...told(u3, ch).members]})`,
  });
  const healedMs = Date.now() - back;
  await eventually(() => hooks.events().length - before >= 7, { timeoutMs: 10_000, what: () => `the outage's webhooks (got ${JSON.stringify(hooks.events().slice(before))})` });
  await sleep(1000);
  for (const [name, c, from] of [['u1 on a', u1, from1], ['u3 on b', u3, from3]] as const) {
    const t = told(c, ch, from);
    assert.deepEqual(t.removed.sort(), ['u2', 'u4'], `${name}: member_removed for the members who left, once each, none for s`);
    assert.deepEqual(t.added, [], `${name}: no member_added for members who never left`);
  }
  const after = hooks.events().slice(before).map((e) => `${e.name} ${e.channel}${e.user_id ? ` ${e.user_id}` : ''}`);
  assert.deepEqual(after.slice().sort(), [
    'channel_occupied plain-new',
    'channel_vacated plain-gone',
    'channel_vacated presence-gone',
    'member_removed presence-gone g1',
    'member_removed presence-gone g2',
    'member_removed presence-heal u2',
    'member_removed presence-heal u4',
  ]);
  assert.ok(after.indexOf('channel_vacated presence-gone') > Math.max(after.indexOf('member_removed presence-gone g1'), after.indexOf('member_removed presence-gone g2')));
  const users = await rest(a.url, app, 'GET', `/apps/${app.id}/channels/${ch}/users`);
  assert.deepEqual((users.body.users as { id: string }[]).map((u) => u.id).sort(), truth);
  const gone = await rest(b.url, app, 'GET', `/apps/${app.id}/channels/presence-gone`);
  assert.deepEqual(gone.body, { occupied: false });
  console.log(`${tag}: member lists healed ${healedMs} ms after Redis was back`);
}

test('Redis SIGKILLed and restarted empty: member lists heal on every client with only the real changes, and their webhooks follow', async () => {
  const redis = await redisServer();
  await healsAfter({ redisUrl: redis.url, begin: () => redis.stop(), end: () => redis.restart() }, 'restart');
});

test('Redis unreachable but keeping its data: member lists heal on every client with only the real changes, and their webhooks follow', async () => {
  const redis = await redisServer();
  const relay = await RedisRelay.start(redis);
  await healsAfter({ redisUrl: relay.url, begin: () => relay.cut(), end: () => relay.mend() }, 'partition');
});

test('events of a channel that keeps a history, triggered while Redis restarts, reach every socket once and in order, with consecutive positions', async () => {
  const redis = await redisServer();
  const config = { apps: [{ ...app, recovery: { historySize: 50, historyTtl: 60 } }] };
  const [a, b] = await Promise.all([node(redis, 'rec-a', {}, config), node(redis, 'rec-b', {}, config)]);
  const plainA = await client(a);
  const plainB = await client(b);
  const opted = await client(b);
  await Promise.all([plainA.subscribe('history-out'), plainB.subscribe('history-out')]);
  opted.send({ event: 'pusher:subscribe', data: { channel: 'history-out', auth: '', ripple_recovery: {} } });
  await opted.nextEvent('pusher_internal:ripple_recovery', 'history-out');
  await redis.stop();
  const sent: string[] = [];
  for (let i = 0; i < 5; i++) {
    const res = await trigger(a, 'history-out', `h${i}`);
    assert.equal(res.status, 200);
    sent.push(`h${i}`);
  }
  await redis.restart();
  await eventually(() => [plainA, plainB, opted].every((c) => ticks(c).length >= 5), { timeoutMs: 15_000, what: () => `every socket got the 5 events (${[plainA, plainB, opted].map((c) => ticks(c).length)})` });
  await sleep(300);
  for (const c of [plainA, plainB, opted]) assert.deepEqual(ticks(c), sent);
  const positions = opted.frames.filter((f) => f.event === 'tick').map((f) => String((f as Frame & { ripple_position?: string }).ripple_position));
  assert.equal(new Set(positions.map((p) => p.split(':')[0])).size, 1, 'one epoch');
  assert.deepEqual(positions.map((p) => Number(p.split(':')[1])), [1, 2, 3, 4, 5]);
});

test('an app with a REST rate limit keeps it while Redis is down, counted per node: within it 200 and delivered everywhere, over it 429', async () => {
  const redis = await redisServer();
  const cfg = { apps: [{ ...app, maxBackendEventsPerSecond: 3 }] };
  const a = await node(redis, 'rate-a', {}, cfg);
  const b = await node(redis, 'rate-b', {}, cfg);
  const here = await client(a);
  await here.subscribe('rated');
  const there = await client(b);
  await there.subscribe('rated');
  await redis.stop();
  await eventually(async () => (await fetch(`${a.url}/ready`)).status === 503, { timeoutMs: 5000, what: 'the node sees Redis down' });
  const within = await trigger(a, 'rated', 'within');
  assert.equal(within.status, 200, JSON.stringify(within.body));
  assert.equal(within.headers.get('x-ratelimit-limit'), '3');
  // Four events are over a budget of three in any one second.
  const over = await rest(a.url, app, 'POST', `/apps/${app.id}/batch_events`, { batch: [1, 2, 3, 4].map((i) => ({ name: 'tick', channel: 'rated', data: `over-${i}` })) });
  assert.equal(over.status, 429);
  await eventually(() => ticks(here).length === 1, { timeoutMs: 2000, what: 'the local delivery' });
  await redis.restart();
  await eventually(() => ticks(there).length === 1, { timeoutMs: 10_000, what: 'the other node\'s delivery once Redis is back' });
  await sleep(200);
  assert.deepEqual(ticks(here), ['within']);
  assert.deepEqual(ticks(there), ['within']);
});
