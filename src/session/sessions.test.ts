// The session logic on the in-memory transport: no socket, no server process, the real channel owner,
// hub and memory engine. The same behaviours are tested end to end in protocol-tests/ and sdk-compat/.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hmacSha256Hex } from '../protocol/signature.js';
import { flush, memoryNode, silentLog } from '../testing/memory-node.js';
import type { MemoryConnection } from '../transport/memory.js';
import { Liveness } from './liveness.js';
import type { Session } from './session.js';

const log = silentLog;
const node = memoryNode;

const sign = (secret: string, text: string) => hmacSha256Hex(secret, text);
const last = (c: MemoryConnection) => c.frames()[c.frames().length - 1];
const events = (c: MemoryConnection, name: string) => c.frames().filter((f) => f.event === name);

test('a new session is told its socket id and activity timeout; unknown keys, bad protocols and disabled apps are refused with the spec codes', async () => {
  const n = await node([
    { id: 'a1', key: 'k1', secret: 's1' },
    { id: 'a2', key: 'k2', secret: 's2', enabled: false },
    { id: 'a3', key: 'k3', secret: 's3', allowedOrigins: ['https://ok.example'] },
  ]);
  const ok = await n.connect();
  const first = ok.conn.frames()[0];
  assert.equal(first.event, 'pusher:connection_established');
  const data = JSON.parse(first.data as string);
  assert.match(data.socket_id, /^\d+\.\d+$/);
  assert.equal(data.activity_timeout, 120);
  for (const [key, protocol, origin, code] of [
    ['nope', '7', '', 4001],
    ['k2', '7', '', 4003],
    ['k1', '99', '', 4007],
    ['k3', '7', 'https://evil.example', 4009],
  ] as const) {
    const { conn } = await n.connect(key, protocol, origin);
    assert.equal(conn.closeCode, code, `${key} ${protocol} ${origin}`);
    assert.deepEqual((conn.frames()[0].data as { code: number }).code, code);
  }
  assert.equal((await n.connect('k3', '7', 'https://ok.example')).conn.closed, false);
});

test('a connection quota refuses the next connection with 4004 and frees the place when one closes', async () => {
  const n = await node([{ id: 'a1', key: 'k1', secret: 's1', maxConnections: 2 }]);
  const a = await n.connect();
  await n.connect();
  assert.equal((await n.connect()).conn.closeCode, 4004);
  a.conn.close(1000, 'bye');
  assert.equal((await n.connect()).conn.closed, false);
});

test('public channel: subscription_succeeded, broadcasts arrive, unsubscribe stops them, and occupied/vacated webhooks follow the count', async () => {
  const n = await node();
  const a = await n.connect();
  a.send({ event: 'pusher:subscribe', data: { channel: 'news' } });
  assert.deepEqual(last(a.conn), { event: 'pusher_internal:subscription_succeeded', channel: 'news', data: '{}' });
  await flush();
  assert.equal(n.webhooks.named('channel_occupied').length, 1);
  n.engine.backbone.publish('a1', 'news', '{"event":"e","channel":"news","data":"1"}');
  assert.equal(last(a.conn).event, 'e');
  a.send({ event: 'pusher:unsubscribe', data: { channel: 'news' } });
  const before = a.conn.sent.length;
  n.engine.backbone.publish('a1', 'news', '{"event":"e","channel":"news","data":"2"}');
  assert.equal(a.conn.sent.length, before);
  await flush();
  assert.equal(n.webhooks.named('channel_vacated').length, 1);
});

test('private channels need the signature over socket_id:channel; a bad one is an AuthError with status 401', async () => {
  const n = await node();
  const a = await n.connect();
  a.send({ event: 'pusher:subscribe', data: { channel: 'private-x', auth: 'k1:deadbeef' } });
  assert.deepEqual(last(a.conn), {
    event: 'pusher:subscription_error',
    channel: 'private-x',
    data: { type: 'AuthError', error: 'Invalid signature', status: 401 },
  });
  a.send({ event: 'pusher:subscribe', data: { channel: 'private-x', auth: `k1:${sign('s1', `${a.s!.socketId}:private-x`)}` } });
  assert.equal(last(a.conn).event, 'pusher_internal:subscription_succeeded');
});

function presenceSubscribe(c: { s?: Session; send: (f: object) => void }, channel: string, userId: string) {
  const channelData = JSON.stringify({ user_id: userId, user_info: { name: userId } });
  c.send({ event: 'pusher:subscribe', data: { channel, channel_data: channelData, auth: `k1:${sign('s1', `${c.s!.socketId}:${channel}:${channelData}`)}` } });
}

test('presence: member_added reaches the others (not the joiner), the member limit refuses with 4100 and leaves no trace, member_removed follows the last socket', async () => {
  const n = await node([{ id: 'a1', key: 'k1', secret: 's1', maxPresenceMembersPerChannel: 2 }]);
  const [a, b, c] = [await n.connect(), await n.connect(), await n.connect()];
  presenceSubscribe(a, 'presence-room', 'ann');
  await flush();
  presenceSubscribe(b, 'presence-room', 'bob');
  await flush();
  assert.equal(events(a.conn, 'pusher_internal:member_added').length, 1);
  assert.equal(events(b.conn, 'pusher_internal:member_added').length, 0);
  const succeeded = JSON.parse(events(b.conn, 'pusher_internal:subscription_succeeded')[0].data as string);
  assert.deepEqual(succeeded.presence.ids, ['ann', 'bob']);

  presenceSubscribe(c, 'presence-room', 'cat');
  await flush();
  assert.deepEqual(last(c.conn).data, { type: 'LimitReached', error: 'The presence channel has reached its limit of 2 members', status: 4100 });
  assert.equal(events(a.conn, 'pusher_internal:member_added').length, 1, 'nobody was told about the refused member');
  assert.deepEqual([...(await n.engine.store.members('a1', 'presence-room')).keys()], ['ann', 'bob']);
  assert.equal(await n.engine.store.subscriptionCount('a1', 'presence-room'), 2);
  c.conn.close(1000, 'bye');
  await flush();
  assert.equal(await n.engine.store.subscriptionCount('a1', 'presence-room'), 2, 'closing the refused socket changes no count');

  b.conn.close(1000, 'bye');
  await flush();
  assert.deepEqual(JSON.parse(last(a.conn).data as string), { user_id: 'bob' });
  assert.deepEqual(n.webhooks.events.map((e) => e.name), ['channel_occupied', 'member_added', 'member_added', 'member_removed']);
  a.conn.close(1000, 'bye');
  await flush();
  assert.deepEqual(n.webhooks.events.slice(-2).map((e) => e.name), ['member_removed', 'channel_vacated']);
});

test('client events reach the other subscribers, never the sender, with user_id on presence channels', async () => {
  const n = await node();
  const [a, b] = [await n.connect(), await n.connect()];
  presenceSubscribe(a, 'presence-chat', 'ann');
  presenceSubscribe(b, 'presence-chat', 'bob');
  await flush();
  const before = a.conn.sent.length;
  a.send({ event: 'client-typing', channel: 'presence-chat', data: { on: true } });
  assert.equal(a.conn.sent.length, before, 'not echoed');
  assert.deepEqual(last(b.conn), { event: 'client-typing', channel: 'presence-chat', data: { on: true }, user_id: 'ann' });
  a.send({ event: 'client-typing', channel: 'not-subscribed', data: {} });
  assert.equal((last(a.conn).data as { code: null }).code, null);
});

test('sign-in: the session joins its user channel, terminate_connections closes every session of the user with 4009', async () => {
  const n = await node();
  const [a, b, other] = [await n.connect(), await n.connect(), await n.connect()];
  for (const c of [a, b]) {
    const userData = JSON.stringify({ id: 'u1' });
    c.send({ event: 'pusher:signin', data: { user_data: userData, auth: `k1:${sign('s1', `${c.s!.socketId}::user::${userData}`)}` } });
    assert.equal(last(c.conn).event, 'pusher:signin_success');
  }
  n.engine.backbone.publish('a1', '#server-to-user-u1', '{"event":"hi","channel":"#server-to-user-u1","data":"x"}');
  assert.equal(last(a.conn).event, 'hi');
  n.engine.backbone.broadcastCommand({ type: 'terminate-user', appId: 'a1', userId: 'u1' });
  assert.equal(a.conn.closeCode, 4009);
  assert.equal(b.conn.closeCode, 4009);
  assert.equal(other.conn.closed, false);
});

test('liveness: an idle session is pinged, closed 4201 if it stays silent; a slow reader is closed 4100', async () => {
  const n = await node();
  const [idle, slow, chatty] = [await n.connect(), await n.connect(), await n.connect()];
  const sessions = [idle.s!, slow.s!, chatty.s!];
  const live = new Liveness(() => sessions, { activityTimeout: 1, pongTimeout: 1, maxBackpressureBytes: 100 }, log);
  const t0 = Date.now();
  slow.conn.buffered = 500;
  live.sweep(t0 + 1000);
  assert.equal(slow.conn.closeCode, 4100);
  assert.equal(last(idle.conn).event, 'pusher:ping');
  chatty.send({ event: 'pusher:pong', data: {} });
  live.sweep(t0 + 2000);
  assert.equal(idle.conn.closeCode, 4201);
  assert.equal(chatty.conn.closed, false, 'a frame after the ping counts as the answer');
});

test('drain closes every session with 4200 and refuses new ones with 4200', async () => {
  const n = await node();
  const a = await n.connect();
  n.sessions.drain();
  assert.equal(a.conn.closeCode, 4200);
  assert.equal((await n.connect()).conn.closeCode, 4200);
});
