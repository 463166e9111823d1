// Channel subscriptions, presence membership, client events and malformed frames over raw frames
// (spec §1.5, §2, §3, §4.2-§4.5, §5, §6, §12). Every failure must leave the connection open.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { startNode, type NodeHandle } from '../src/testing/harness.js';
import { sleep } from '../src/testing/eventually.js';
import { RawClient, presenceAuth, privateAuth, type Frame } from '../src/testing/raw-client.js';
import { rest } from '../src/testing/sign-rest.js';

const app = { id: 'app-id', key: 'app-key', secret: 'app-secret' };
const quiet = { id: 'quiet-id', key: 'quiet-key', secret: 'quiet-secret' };
const MAX_MEMBERS = 2;
const RATE = 5;
const MAX_FRAME = 64 * 1024;

let n: NodeHandle;
const raws: RawClient[] = [];

before(async () => {
  n = await startNode({
    config: {
      maxFrameBytes: MAX_FRAME,
      apps: [
        {
          ...app,
          enableClientMessages: true,
          maxPresenceMembersPerChannel: MAX_MEMBERS,
          maxPresenceMemberSizeInKb: 1,
          maxClientEventsPerSecond: RATE,
          maxEventPayloadInKb: 1,
        },
        { ...quiet, enableClientMessages: false },
      ],
    },
  });
});

after(async () => {
  for (const r of raws) r.ws.terminate();
  await n?.kill();
});

async function connect(creds = app): Promise<RawClient> {
  const c = await RawClient.connect(n.port, creds.key);
  raws.push(c);
  return c;
}

/** The socket is still open and answering (pusher:ping → pusher:pong). */
async function assertAlive(c: RawClient, what = 'connection'): Promise<void> {
  assert.equal(c.ws.readyState, WebSocket.OPEN, `${what} is open`);
  c.send({ event: 'pusher:ping', data: {} });
  await c.nextEvent('pusher:pong', undefined, 2000);
}

async function subPrivate(c: RawClient, channel: string, creds = app): Promise<Frame> {
  return c.subscribe(channel, privateAuth(creds.key, creds.secret, c.socketId, channel));
}

function memberData(userId: string, info: unknown = { name: `user ${userId}` }): string {
  return JSON.stringify({ user_id: userId, user_info: info });
}

async function subPresence(c: RawClient, channel: string, userId: string, info?: unknown): Promise<Frame> {
  const cd = memberData(userId, info);
  return c.subscribe(channel, presenceAuth(app.key, app.secret, c.socketId, channel, cd), cd);
}

function presenceOf(f: Frame): { ids: string[]; hash: Record<string, unknown>; count: number } {
  assert.equal(f.event, 'pusher_internal:subscription_succeeded', JSON.stringify(f));
  assert.equal(typeof f.data, 'string', 'presence data is a JSON string (spec §12.3)');
  return JSON.parse(f.data as string).presence;
}

function assertSubError(f: Frame, channel: string, status: number, type?: string): void {
  assert.equal(f.event, 'pusher:subscription_error', JSON.stringify(f));
  assert.equal(f.channel, channel);
  const d = f.data as { type?: string; error?: string; status?: number };
  assert.equal(typeof d, 'object', 'data is an object');
  assert.equal(d.status, status, JSON.stringify(f));
  if (type !== undefined) assert.equal(d.type, type, JSON.stringify(f));
  assert.equal(typeof d.error, 'string');
}

async function trigger(channel: string, name: string, data: string, socketId?: string): Promise<void> {
  const body: Record<string, unknown> = { name, channels: [channel], data };
  if (socketId) body.socket_id = socketId;
  const r = await rest(n.url, app, 'POST', `/apps/${app.id}/events`, body);
  assert.equal(r.status, 200, JSON.stringify(r.body));
}

/** Waits, then counts every frame the client ever received that matches (not only the newer ones). */
async function count(c: RawClient, pred: (f: Frame) => boolean, ms = 300): Promise<number> {
  await sleep(ms);
  return c.frames.filter(pred).length;
}

const isErr = (f: Frame) => f.event === 'pusher:error';
const errData = (f: Frame) => f.data as { code: number | null; message: string };

// ---------------------------------------------------------------- subscribe

test('public subscribe: exactly {"event":"pusher_internal:subscription_succeeded","channel":…,"data":"{}"}', async () => {
  const c = await connect();
  const f = await c.subscribe('ch-public');
  assert.deepEqual(f, { event: 'pusher_internal:subscription_succeeded', channel: 'ch-public', data: '{}' });
});

test('private subscribe with key:HMAC(socket_id:channel) succeeds', async () => {
  const c = await connect();
  const f = await subPrivate(c, 'private-ch-ok');
  assert.deepEqual(f, { event: 'pusher_internal:subscription_succeeded', channel: 'private-ch-ok', data: '{}' });
});

test('private subscribe with a bad, missing, wrong-key or other-socket auth → channel-scoped subscription_error AuthError 401; socket stays open', async () => {
  const c = await connect();
  const other = await connect();
  const ch = 'private-ch-bad';
  const good = privateAuth(app.key, app.secret, c.socketId, ch);
  const cases: [string, unknown][] = [
    ['wrong secret', privateAuth(app.key, 'not-the-secret', c.socketId, ch)],
    ['empty auth', ''],
    ['no colon', good.replace(':', '')],
    ['wrong key part', `other-key:${good.split(':')[1]}`],
    ['signed for another socket', privateAuth(app.key, app.secret, other.socketId, ch)],
    ['signed for another channel', privateAuth(app.key, app.secret, c.socketId, 'private-ch-other')],
    ['upper-case hex', `${app.key}:${good.split(':')[1].toUpperCase()}`],
  ];
  for (const [what, auth] of cases) {
    c.send({ event: 'pusher:subscribe', data: { channel: ch, auth } });
    const f = await c.next((x) => x.channel === ch || x.event === 'pusher:error');
    assertSubError(f, ch, 401, 'AuthError');
    void what;
  }
  // auth field absent altogether
  c.send({ event: 'pusher:subscribe', data: { channel: ch } });
  assertSubError(await c.next((x) => x.channel === ch || isErr(x)), ch, 401, 'AuthError');
  await assertAlive(c);
  // after the failures the right token still works: nothing was half-joined
  assert.equal((await subPrivate(c, ch)).event, 'pusher_internal:subscription_succeeded');
});

test('a refused private subscription does not receive channel events', async () => {
  const c = await connect();
  const f = await c.subscribe('private-ch-refused', `${app.key}:${'0'.repeat(64)}`);
  assertSubError(f, 'private-ch-refused', 401, 'AuthError');
  await trigger('private-ch-refused', 'secret-stuff', '"x"');
  assert.equal(await count(c, (x) => x.event === 'secret-stuff'), 0);
});

test('private-encrypted subscribe: same auth as private; bad auth → AuthError 401', async () => {
  const c = await connect();
  const ok = await subPrivate(c, 'private-encrypted-ch');
  assert.deepEqual(ok, { event: 'pusher_internal:subscription_succeeded', channel: 'private-encrypted-ch', data: '{}' });
  const bad = await c.subscribe('private-encrypted-ch2', privateAuth(app.key, app.secret, c.socketId, 'private-encrypted-ch'));
  assertSubError(bad, 'private-encrypted-ch2', 401, 'AuthError');
  await assertAlive(c);
});

test('presence subscribe: subscription_succeeded carries {presence:{ids,hash,count}} including the joiner', async () => {
  const a = await connect();
  const b = await connect();
  assert.deepEqual(presenceOf(await subPresence(a, 'presence-ch-join', '1', { name: 'Ann' })), {
    ids: ['1'],
    hash: { '1': { name: 'Ann' } },
    count: 1,
  });
  const p = presenceOf(await subPresence(b, 'presence-ch-join', '2', { name: 'Bob' }));
  assert.deepEqual([...p.ids].sort(), ['1', '2']);
  assert.deepEqual(p.hash, { '1': { name: 'Ann' }, '2': { name: 'Bob' } });
  assert.equal(p.count, 2);
});

test('presence subscribe: bad signature → AuthError 401; channel_data altered after signing → AuthError 401; no channel_data → subscription_error 4302', async () => {
  const c = await connect();
  const ch = 'presence-ch-bad';
  const cd = memberData('7');
  assertSubError(await c.subscribe(ch, presenceAuth(app.key, 'nope', c.socketId, ch, cd), cd), ch, 401, 'AuthError');
  // re-serialised channel_data (spacing changed) must not verify (spec §4.5, §12.5)
  const signed = presenceAuth(app.key, app.secret, c.socketId, ch, cd);
  assertSubError(await c.subscribe(ch, signed, JSON.stringify(JSON.parse(cd), null, 1)), ch, 401, 'AuthError');
  // signature over socket_id:channel only, no channel_data: authorised but not a member → ServerError 4302
  assertSubError(await c.subscribe(ch, privateAuth(app.key, app.secret, c.socketId, ch)), ch, 4302);
  await assertAlive(c);
});

// ---------------------------------------------------------------- §3.6

test('duplicate subscribe is idempotent: success again, no pusher:error, counted once (one unsubscribe vacates)', async () => {
  const c = await connect();
  const ch = 'ch-dup';
  assert.equal((await c.subscribe(ch)).event, 'pusher_internal:subscription_succeeded');
  const again = await c.subscribe(ch);
  assert.deepEqual(again, { event: 'pusher_internal:subscription_succeeded', channel: ch, data: '{}' });
  assert.ok(c.frames.every((f) => f.event !== 'pusher:error'), 'no pusher:error');
  // one event delivered once, not twice
  await trigger(ch, 'once', '"1"');
  await c.nextEvent('once', ch);
  assert.equal(await count(c, (f) => f.event === 'once'), 1, 'delivered once');
  c.send({ event: 'pusher:unsubscribe', data: { channel: ch } });
  await sleep(200);
  const info = await rest(n.url, app, 'GET', `/apps/${app.id}/channels/${ch}`);
  assert.deepEqual(info.body, { occupied: false });
});

test('duplicate presence subscribe: no second member_added, member list unchanged', async () => {
  const watcher = await connect();
  const dup = await connect();
  const ch = 'presence-ch-dup';
  await subPresence(watcher, ch, 'w');
  await subPresence(dup, ch, 'd');
  await watcher.nextEvent('pusher_internal:member_added', ch);
  const again = presenceOf(await subPresence(dup, ch, 'd'));
  assert.equal(again.count, 2);
  assert.equal(await count(watcher, (f) => f.event === 'pusher_internal:member_added'), 1, 'one member_added for d');
  const users = await rest(n.url, app, 'GET', `/apps/${app.id}/channels/${ch}/users`);
  assert.deepEqual(users.body, { users: expectUnordered(users.body.users, [{ id: 'w' }, { id: 'd' }]) });
});

function expectUnordered<T>(got: unknown, want: T[]): T[] {
  const key = (x: unknown) => JSON.stringify(x);
  assert.ok(Array.isArray(got), `array expected, got ${key(got)}`);
  assert.deepEqual([...(got as T[])].map(key).sort(), want.map(key).sort());
  return got as T[];
}

test('unsubscribe from a channel never subscribed is ignored: no frame, connection open', async () => {
  const c = await connect();
  c.send({ event: 'pusher:unsubscribe', data: { channel: 'ch-never' } });
  c.send({ event: 'pusher:unsubscribe', data: { channel: 'private-ch-never' } });
  assert.equal(await count(c, (f) => f.event !== 'pusher:connection_established'), 0, `got ${JSON.stringify(c.frames.slice(1))}`);
  await assertAlive(c);
});

test('after unsubscribe the socket receives no more events of that channel', async () => {
  const c = await connect();
  await c.subscribe('ch-unsub');
  c.send({ event: 'pusher:unsubscribe', data: { channel: 'ch-unsub' } });
  await sleep(150);
  await trigger('ch-unsub', 'late', '"x"');
  assert.equal(await count(c, (f) => f.event === 'late'), 0);
});

// ---------------------------------------------------------------- names

test('channel name: 200 characters accepted, 201 → subscription_error LimitReached 4009', async () => {
  const c = await connect();
  const ok = 'n'.repeat(200);
  assert.equal((await c.subscribe(ok)).event, 'pusher_internal:subscription_succeeded');
  const long = 'n'.repeat(201);
  assertSubError(await c.subscribe(long), long, 4009, 'LimitReached');
  const longPrivate = 'private-' + 'p'.repeat(193);
  assertSubError(await c.subscribe(longPrivate, privateAuth(app.key, app.secret, c.socketId, longPrivate)), longPrivate, 4009, 'LimitReached');
  await assertAlive(c);
});

test('channel names outside [A-Za-z0-9_-=@,.;] → subscription_error 4009; every allowed character is accepted', async () => {
  const c = await connect();
  for (const bad of ['has space', 'star*', 'slash/x', 'a#b', 'quote"', 'ümlaut', 'tab\tx', 'colon:x']) {
    assertSubError(await c.subscribe(bad), bad, 4009);
  }
  const all = 'AZaz09_-=@,.;';
  assert.equal((await c.subscribe(all)).event, 'pusher_internal:subscription_succeeded');
  await assertAlive(c);
});

test('#server-to-user-<id> is refused for a connection not signed in as that user', async () => {
  const c = await connect();
  const f = await c.subscribe('#server-to-user-1');
  assert.equal(f.event, 'pusher:subscription_error');
  assert.equal(f.channel, '#server-to-user-1');
  await assertAlive(c);
});

// ---------------------------------------------------------------- presence membership (§5)

test('member_added only for the first socket of a user; member_removed only after that user\'s last socket leaves', async () => {
  const ch = 'presence-ch-multi';
  const watcher = await connect();
  await subPresence(watcher, ch, 'watcher');

  const bob1 = await connect();
  await subPresence(bob1, ch, 'bob', { name: 'Bob' });
  const added = await watcher.nextEvent('pusher_internal:member_added', ch);
  assert.deepEqual(added, {
    event: 'pusher_internal:member_added',
    channel: ch,
    data: JSON.stringify({ user_id: 'bob', user_info: { name: 'Bob' } }),
  });
  assert.ok(!bob1.frames.some((f) => f.event === 'pusher_internal:member_added'), 'joiner does not get its own member_added');

  const bob2 = await connect();
  const p = presenceOf(await subPresence(bob2, ch, 'bob', { name: 'Bob' }));
  assert.equal(p.count, 2, 'count counts users, not sockets');
  assert.equal(await count(watcher, (f) => f.event === 'pusher_internal:member_added'), 1, 'second socket of bob: no member_added');
  assert.ok(!bob1.frames.some((f) => f.event === 'pusher_internal:member_added'), 'bob1 not told about bob2');

  bob1.send({ event: 'pusher:unsubscribe', data: { channel: ch } });
  assert.equal(await count(watcher, (f) => f.event === 'pusher_internal:member_removed', 400), 0, 'bob still has a socket');
  const stillThere = await rest(n.url, app, 'GET', `/apps/${app.id}/channels/${ch}`, undefined, { info: 'user_count' });
  assert.equal(stillThere.body.user_count, 2);

  bob2.ws.terminate(); // a disconnect counts as leaving
  const removed = await watcher.nextEvent('pusher_internal:member_removed', ch);
  assert.deepEqual(removed, { event: 'pusher_internal:member_removed', channel: ch, data: JSON.stringify({ user_id: 'bob' }) });
  assert.equal(await count(watcher, (f) => f.event === 'pusher_internal:member_removed'), 1, 'exactly one member_removed');
});

test('numeric user_id is turned into a string in the member list and member_added', async () => {
  const ch = 'presence-ch-numeric';
  const watcher = await connect();
  await subPresence(watcher, ch, 'w');
  const c = await connect();
  const cd = JSON.stringify({ user_id: 42, user_info: {} });
  const p = presenceOf(await c.subscribe(ch, presenceAuth(app.key, app.secret, c.socketId, ch, cd), cd));
  assert.ok(p.ids.includes('42') && !p.ids.includes(42 as unknown as string), JSON.stringify(p));
  const added = await watcher.nextEvent('pusher_internal:member_added', ch);
  assert.equal(JSON.parse(added.data as string).user_id, '42');
});

test(`presence member limit (${MAX_MEMBERS}): the next user gets subscription_error LimitReached 4100; other users are not told; same user may add sockets`, async () => {
  const ch = 'presence-ch-full';
  const u1 = await connect();
  const u2 = await connect();
  await subPresence(u1, ch, 'u1');
  await subPresence(u2, ch, 'u2');
  await u1.nextEvent('pusher_internal:member_added', ch);

  const u3 = await connect();
  assertSubError(await subPresence(u3, ch, 'u3'), ch, 4100, 'LimitReached');
  await assertAlive(u3);
  assert.equal(await count(u1, (f) => f.event.startsWith('pusher_internal:member') && String(f.data).includes('u3')), 0, 'no member_added/removed for a refused user');
  assert.equal(u1.frames.filter((f) => f.event === 'pusher_internal:member_removed').length, 0);

  const users = await rest(n.url, app, 'GET', `/apps/${app.id}/channels/${ch}/users`);
  expectUnordered(users.body.users, [{ id: 'u1' }, { id: 'u2' }]);

  const u1b = await connect();
  assert.equal(presenceOf(await subPresence(u1b, ch, 'u1')).count, 2, 'an existing user is not a new member');

  // a slot freed is usable again
  u2.send({ event: 'pusher:unsubscribe', data: { channel: ch } });
  await u1.nextEvent('pusher_internal:member_removed', ch);
  assert.equal(presenceOf(await subPresence(u3, ch, 'u3')).count, 2);
});

test('presence user_info over maxPresenceMemberSizeInKb (1 KB) → subscription_error LimitReached 4301; at the limit it is accepted', async () => {
  const ch = 'presence-ch-big';
  const c = await connect();
  // JSON.stringify({"b":"x…"}) = 8 + len bytes
  const tooBig = { b: 'x'.repeat(1024 - 8 + 1) };
  assert.equal(Buffer.byteLength(JSON.stringify(tooBig)), 1025);
  assertSubError(await subPresence(c, ch, 'big', tooBig), ch, 4301, 'LimitReached');
  await assertAlive(c);
  const fits = { b: 'x'.repeat(1024 - 8) };
  assert.equal(Buffer.byteLength(JSON.stringify(fits)), 1024);
  assert.equal(presenceOf(await subPresence(c, ch, 'big', fits)).count, 1);
});

// ---------------------------------------------------------------- client events (§6)

async function pair(channel: string, creds = app): Promise<[RawClient, RawClient]> {
  const a = await connect(creds);
  const b = await connect(creds);
  if (channel.startsWith('presence-')) {
    await subPresence(a, channel, 'alice');
    await subPresence(b, channel, 'bob');
  } else if (channel.startsWith('private-')) {
    assert.equal((await subPrivate(a, channel, creds)).event, 'pusher_internal:subscription_succeeded');
    assert.equal((await subPrivate(b, channel, creds)).event, 'pusher_internal:subscription_succeeded');
  } else {
    await a.subscribe(channel);
    await b.subscribe(channel);
  }
  return [a, b];
}

test('client event on a private channel: relayed verbatim to the others, not echoed to the sender, no user_id', async () => {
  const ch = 'private-ce';
  const [a, b] = await pair(ch);
  const third = await connect();
  await subPrivate(third, ch);
  a.send({ event: 'client-typing', channel: ch, data: { x: 1, s: 'ą§' } });
  const got = await b.nextEvent('client-typing', ch);
  assert.deepEqual(got, { event: 'client-typing', channel: ch, data: { x: 1, s: 'ą§' } });
  assert.deepEqual(await third.nextEvent('client-typing', ch), got);
  // a string stays a string
  a.send({ event: 'client-str', channel: ch, data: '{"y":2}' });
  assert.deepEqual(await b.nextEvent('client-str', ch), { event: 'client-str', channel: ch, data: '{"y":2}' });
  assert.equal(await count(a, (f) => f.event.startsWith('client-') || isErr(f)), 0, 'not echoed, no error');
});

test('client event on a presence channel: the sender\'s user_id is added from the server\'s record, never from the frame', async () => {
  const ch = 'presence-ce';
  const [a, b] = await pair(ch);
  a.send({ event: 'client-hi', channel: ch, data: { x: 1 }, user_id: 'bob' });
  const got = await b.nextEvent('client-hi', ch);
  assert.deepEqual(got, { event: 'client-hi', channel: ch, data: { x: 1 }, user_id: 'alice' });
  assert.equal(await count(a, (f) => f.event === 'client-hi'), 0, 'not echoed');
});

async function assertRejectedClientEvent(sender: RawClient, receiver: RawClient, channel: string, codes: (number | null)[], event = 'client-x', data: unknown = { x: 1 }): Promise<Frame> {
  sender.send({ event, channel, data });
  const err = await sender.next(isErr);
  assert.ok(codes.includes(errData(err).code), `code ${errData(err).code} in ${JSON.stringify(codes)}: ${JSON.stringify(err)}`);
  assert.equal(typeof errData(err).message, 'string');
  assert.equal(await count(receiver, (f) => f.event === event), 0, `${event} on ${channel} not delivered`);
  await assertAlive(sender, 'sender');
  return err;
}

test('client event on a public channel is rejected with pusher:error and not relayed', async () => {
  const [a, b] = await pair('ce-public');
  await assertRejectedClientEvent(a, b, 'ce-public', [4301, null]);
});

test('client event on a private-encrypted channel is rejected and not relayed (spec §4.4)', async () => {
  const [a, b] = await pair('private-encrypted-ce');
  await assertRejectedClientEvent(a, b, 'private-encrypted-ce', [4301, null]);
});

test('client event on a private channel the sender has not subscribed to is rejected', async () => {
  const b = await connect();
  await subPrivate(b, 'private-ce-notsub');
  const a = await connect();
  await assertRejectedClientEvent(a, b, 'private-ce-notsub', [4301, null]);
});

test('client events when the app has enableClientMessages false → pusher:error 4301, not relayed', async () => {
  const [a, b] = await pair('private-ce-quiet', quiet);
  const err = await assertRejectedClientEvent(a, b, 'private-ce-quiet', [4301]);
  assert.match(errData(err).message, /client messag/i);
});

test('client event data over maxEventPayloadInKb (1 KB) → pusher:error 4301; at the limit it is relayed', async () => {
  const ch = 'private-ce-size';
  const [a, b] = await pair(ch);
  await assertRejectedClientEvent(a, b, ch, [4301], 'client-big', 'x'.repeat(1025));
  a.send({ event: 'client-fits', channel: ch, data: 'y'.repeat(1024) });
  assert.equal((await b.nextEvent('client-fits', ch)).data, 'y'.repeat(1024));
});

test('client event name over 200 characters → pusher:error 4301', async () => {
  const ch = 'private-ce-name';
  const [a, b] = await pair(ch);
  await assertRejectedClientEvent(a, b, ch, [4301], 'client-' + 'n'.repeat(194));
});

test(`client event rate limit (${RATE}/s): excess events get pusher:error 4301 and are dropped; the socket is NOT closed (43xx is never a close code, spec §1.7)`, async () => {
  const ch = 'private-ce-rate';
  const [a, b] = await pair(ch);
  await sleep(1050); // start from a fresh one-second window
  const burst = RATE * 2;
  for (let i = 0; i < burst; i++) a.send({ event: 'client-burst', channel: ch, data: { i } });
  await sleep(500);
  const delivered = b.frames.filter((f) => f.event === 'client-burst');
  const errors = a.frames.filter(isErr);
  assert.equal(delivered.length + errors.length, burst, `${delivered.length} delivered + ${errors.length} refused`);
  assert.ok(delivered.length >= RATE && delivered.length < burst, `delivered ${delivered.length}`);
  for (const e of errors) assert.equal(errData(e).code, 4301, JSON.stringify(e));
  assert.match(errData(errors[0]).message, /rate limit/i);
  assert.deepEqual(delivered.slice(0, RATE).map((f) => (f.data as { i: number }).i), [0, 1, 2, 3, 4], 'the first ones in order');
  await assertAlive(a, 'rate-limited sender');
  await sleep(1000);
  a.send({ event: 'client-after', channel: ch, data: {} });
  await b.nextEvent('client-after', ch);
});

// ---------------------------------------------------------------- malformed frames

test('malformed frames each get pusher:error (code null or 43xx), the socket stays open, and another socket keeps being served', async () => {
  const bystander = await connect();
  await bystander.subscribe('ch-bystander');
  const c = await connect();
  const bad: [string, string][] = [
    ['bad JSON', '{"event":"pusher:ping"'],
    ['not JSON at all', 'hello'],
    ['JSON array', '[1,2,3]'],
    ['JSON number', '42'],
    ['JSON string', '"pusher:ping"'],
    ['JSON null', 'null'],
    ['no event field', '{"data":{}}'],
    ['event not a string', '{"event":5}'],
    ['empty event', '{"event":""}'],
    ['channel not a string', '{"event":"client-x","channel":7}'],
    ['unknown pusher: event', '{"event":"pusher:frobnicate","data":{}}'],
    ['unknown non-client event', '{"event":"my-event","channel":"ch","data":{}}'],
    ['subscribe without data', '{"event":"pusher:subscribe"}'],
    ['subscribe with array data', '{"event":"pusher:subscribe","data":[]}'],
    ['subscribe without channel', '{"event":"pusher:subscribe","data":{"auth":""}}'],
    ['subscribe with numeric channel', '{"event":"pusher:subscribe","data":{"channel":5}}'],
    ['unsubscribe without channel', '{"event":"pusher:unsubscribe","data":{}}'],
    ['signin without data', '{"event":"pusher:signin"}'],
  ];
  for (const [what, text] of bad) {
    const before = c.frames.length;
    c.send(text);
    const err = await c.next((f) => isErr(f) || f.event === 'pusher:subscription_error', 2000).catch(() => undefined);
    assert.ok(err, `${what}: expected pusher:error, got ${JSON.stringify(c.frames.slice(before))}`);
    assert.equal(err.event, 'pusher:error', `${what}: ${JSON.stringify(err)}`);
    const d = errData(err);
    assert.equal(typeof d, 'object', `${what}: data is an object`);
    assert.ok(d.code === null || (d.code >= 4300 && d.code < 4400), `${what}: non-fatal code, got ${d.code}`);
    assert.equal(typeof d.message, 'string');
    assert.equal(c.ws.readyState, WebSocket.OPEN, `${what}: still open`);
  }
  // invalid UTF-8 in a binary frame
  c.ws.send(Buffer.from([0xff, 0xfe, 0x7b]), { binary: true });
  const err = await c.next(isErr);
  assert.equal(errData(err).code, null);
  await assertAlive(c);
  assert.equal((await c.subscribe('ch-after-junk')).event, 'pusher_internal:subscription_succeeded');
  await trigger('ch-bystander', 'still-here', '"ok"');
  assert.deepEqual(await bystander.nextEvent('still-here', 'ch-bystander'), { event: 'still-here', channel: 'ch-bystander', data: '"ok"' });
});

test('data given as a JSON string is accepted for pusher:subscribe (spec §1.5, tolerant server)', async () => {
  const c = await connect();
  c.send({ event: 'pusher:subscribe', data: JSON.stringify({ channel: 'ch-string-data', auth: '' }) });
  const f = await c.next((x) => x.channel === 'ch-string-data' || isErr(x));
  assert.equal(f.event, 'pusher_internal:subscription_succeeded');
});

test('a WebSocket frame over maxFrameBytes closes only that socket; the process keeps serving the others', async () => {
  const bystander = await connect();
  await bystander.subscribe('ch-bystander-2');
  const c = await connect();
  c.send({ event: 'client-huge', channel: 'private-x', data: 'z'.repeat(MAX_FRAME + 10) });
  // uWS drops the connection (1006) or closes it 1009 "message too big"; never a 40xx give-up code.
  const closed = await c.closed;
  assert.ok([1006, 1009].includes(closed.code), `close code ${closed.code}`);
  await assertAlive(bystander, 'bystander');
  await trigger('ch-bystander-2', 'still-here', '"ok"');
  await bystander.nextEvent('still-here', 'ch-bystander-2');
  const fresh = await connect();
  await assertAlive(fresh, 'new connection');
});

// ---------------------------------------------------------------- encrypted relay

test('private-encrypted: REST data is relayed byte-for-byte, never decrypted or re-encoded (spec §4.4)', async () => {
  const ch = 'private-encrypted-relay';
  const c = await connect();
  await subPrivate(c, ch);
  const raw: string[] = [];
  c.ws.on('message', (m) => raw.push(m.toString()));
  const data = JSON.stringify({
    nonce: 'pdWs1N0ZKhAJwB2D5ZQCpOr6bXgqHX6T',
    ciphertext: 'Zm9vL2Jhcis9PQ==/+AAEC\u2028 ą€ \\u0041 "q" </script>',
  });
  await trigger(ch, 'secret', data);
  const f = await c.nextEvent('secret', ch);
  assert.deepEqual(f, { event: 'secret', channel: ch, data });
  assert.equal(typeof f.data, 'string');
  const wire = raw.find((r) => r.includes('"secret"'));
  assert.ok(wire);
  assert.equal(JSON.parse(wire).data, data, 'same bytes once the frame is parsed');
  // a non-JSON ciphertext-like string too
  const opaque = 'AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=';
  await trigger(ch, 'secret2', opaque);
  assert.equal((await c.nextEvent('secret2', ch)).data, opaque);
});
