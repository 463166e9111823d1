// Channel features through unmodified pusher-js (Node build) and the `pusher` server SDK, with the SDK
// signing every subscription in pusher-js's `authorizer` (no auth endpoint in between): public, private,
// presence and private-encrypted channels, client events, channel queries, socket exclusion and batches
// (spec §3, §4.2–4.4, §5, §6, §9.3, §9.5).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import PusherServer from 'pusher';
import { startNode, type NodeHandle } from '../src/testing/harness.js';
import { eventually, sleep, waitUntil } from '../src/testing/eventually.js';
import { Pusher, type PusherClient } from '../src/testing/pusher-js.js';

const app = { id: 'compat-id', key: 'compat-key', secret: 'compat-secret' };
const masterKey = randomBytes(32).toString('base64');

let node: NodeHandle;
let server: PusherServer;
const clients: PusherClient[] = [];

type Channel = ReturnType<PusherClient['subscribe']>;
type PresenceChannel = Channel & {
  members: { count: number; me: { id: string; info: unknown } | null; each(cb: (m: { id: string; info: unknown }) => void): void };
};
interface Frame {
  event: string;
  channel?: string;
  data?: unknown;
}

function sdk(secret = app.secret): PusherServer {
  return new PusherServer({
    appId: app.id,
    key: app.key,
    secret,
    host: '127.0.0.1',
    port: String(node.port),
    useTLS: false,
    encryptionMasterKeyBase64: masterKey,
  });
}

before(async () => {
  node = await startNode({ config: { apps: [{ ...app, enableClientMessages: true }] } });
  server = sdk();
});

after(async () => {
  for (const c of clients) c.disconnect();
  await node?.kill();
});

/** A pusher-js client whose authorizer signs with `signer` (the SDK): presence data only for presence- channels. */
function client(opts: { presence?: PusherServer.PresenceChannelData; signer?: PusherServer } = {}): PusherClient {
  const signer = opts.signer ?? server;
  const p = new Pusher(app.key, {
    cluster: 'mt1',
    wsHost: '127.0.0.1',
    wsPort: node.port,
    forceTLS: false,
    disableStats: true,
    enabledTransports: ['ws'],
    authorizer: (channel) => ({
      authorize: (socketId, cb) => {
        try {
          const presence = channel.name.startsWith('presence-') ? opts.presence : undefined;
          cb(null, signer.authorizeChannel(socketId, channel.name, presence));
        } catch (err) {
          cb(err as Error, null);
        }
      },
    }),
  });
  clients.push(p);
  return p;
}

/** Every frame the connection received, as pusher-js decoded it. */
function frames(p: PusherClient): Frame[] {
  const seen: Frame[] = [];
  p.connection.bind('message', (m: Frame) => seen.push(m));
  return seen;
}

async function connected(p: PusherClient): Promise<string> {
  await eventually(() => p.connection.state === 'connected', { timeoutMs: 5000, what: () => `connected (state ${p.connection.state})` });
  return p.connection.socket_id;
}

/** Subscribes and resolves on pusher:subscription_succeeded with the channel and the success data. */
function subscribe<T extends Channel = Channel>(p: PusherClient, name: string): Promise<{ ch: T; data: unknown }> {
  return new Promise((resolve, reject) => {
    const ch = p.subscribe(name) as T;
    const t = setTimeout(() => reject(new Error(`subscription to ${name} not confirmed`)), 5000);
    ch.bind('pusher:subscription_succeeded', (data: unknown) => {
      clearTimeout(t);
      resolve({ ch, data });
    });
    ch.bind('pusher:subscription_error', (e: unknown) => {
      clearTimeout(t);
      reject(new Error(`subscription to ${name} failed: ${JSON.stringify(e)}`));
    });
  });
}

function collect(ch: Channel, event: string): unknown[] {
  const got: unknown[] = [];
  ch.bind(event, (d: unknown) => got.push(d));
  return got;
}

async function settle(ms = 300): Promise<void> {
  await sleep(ms);
}

function memberIds(ch: PresenceChannel): string[] {
  const ids: string[] = [];
  ch.members.each((m) => ids.push(m.id));
  return ids.sort();
}

test('public channel: pusher.trigger reaches a pusher-js subscriber with the data the SDK encoded', async () => {
  const p = client();
  await connected(p);
  const { ch } = await subscribe(p, 'compat-public');
  const got = collect(ch, 'greet');
  const res = await server.trigger('compat-public', 'greet', { hello: 'world', n: 1, text: 'ą§¶€ "quoted"' });
  assert.equal(res.status, 200);
  await server.trigger('compat-public', 'greet', 'plain text, not JSON');
  await eventually(() => got.length >= 2, { timeoutMs: 3000, what: () => `two events: ${JSON.stringify(got)}` });
  await settle();
  assert.deepEqual(got, [{ hello: 'world', n: 1, text: 'ą§¶€ "quoted"' }, 'plain text, not JSON']);
});

test('private channel: authorizer returning pusher.authorizeChannel subscribes and receives events; a wrong secret gets pusher:subscription_error', async () => {
  const p = client();
  await connected(p);
  const { ch } = await subscribe(p, 'private-compat');
  const got = collect(ch, 'secret-news');
  await server.trigger('private-compat', 'secret-news', { id: 7 });
  await eventually(() => got.length >= 1, { timeoutMs: 3000, what: 'private event' });
  assert.deepEqual(got, [{ id: 7 }]);

  const forged = client({ signer: sdk('not-the-secret') });
  await connected(forged);
  const errors: unknown[] = [];
  const fch = forged.subscribe('private-compat');
  fch.bind('pusher:subscription_error', (e: unknown) => errors.push(e));
  const fgot = collect(fch, 'secret-news');
  await eventually(() => errors.length >= 1, { timeoutMs: 3000, what: 'subscription_error for the forged signature' });
  assert.equal(fch.subscribed, false);
  await server.trigger('private-compat', 'secret-news', { id: 8 });
  await eventually(() => got.length >= 2, { timeoutMs: 3000, what: 'second private event' });
  await settle();
  assert.deepEqual(fgot, [], 'the refused connection gets nothing');
  assert.equal(forged.connection.state, 'connected', 'a refused subscription does not close the connection (spec §4.5)');
});

test('presence channel: members list, me and count; pusher:member_added and pusher:member_removed between two clients', async () => {
  const ann = client({ presence: { user_id: 'ann', user_info: { name: 'Ann', emoji: 'ą§' } } });
  const bob = client({ presence: { user_id: 'bob', user_info: { name: 'Bob' } } });
  await Promise.all([connected(ann), connected(bob)]);

  const a = await subscribe<PresenceChannel>(ann, 'presence-compat');
  assert.equal(a.ch.members.count, 1);
  assert.deepEqual(a.ch.members.me, { id: 'ann', info: { name: 'Ann', emoji: 'ą§' } });
  const added = collect(a.ch, 'pusher:member_added');
  const removed = collect(a.ch, 'pusher:member_removed');

  const b = await subscribe<PresenceChannel>(bob, 'presence-compat');
  assert.equal(b.ch.members.count, 2);
  assert.deepEqual(b.ch.members.me, { id: 'bob', info: { name: 'Bob' } });
  assert.deepEqual(memberIds(b.ch), ['ann', 'bob']);
  assert.deepEqual((b.data as { count: number }).count, 2, 'subscription_succeeded hands the members object to the app');

  await eventually(() => added.length >= 1, { timeoutMs: 3000, what: 'member_added at ann' });
  assert.deepEqual(added, [{ id: 'bob', info: { name: 'Bob' } }]);
  assert.equal(a.ch.members.count, 2);
  assert.deepEqual(memberIds(a.ch), ['ann', 'bob']);

  bob.disconnect();
  await eventually(() => removed.length >= 1, { timeoutMs: 3000, what: 'member_removed at ann' });
  await settle();
  assert.deepEqual(removed, [{ id: 'bob', info: { name: 'Bob' } }]);
  assert.equal(a.ch.members.count, 1);
  assert.deepEqual(memberIds(a.ch), ['ann']);
  assert.equal(added.length, 1);
});

test('private-encrypted channel: the SDK encrypts with encryptionMasterKeyBase64, the wire carries ciphertext, pusher-js decrypts to the plain object', async () => {
  const p = client();
  const wire = frames(p);
  await connected(p);
  const { ch } = await subscribe(p, 'private-encrypted-compat');
  const got = collect(ch, 'sealed');
  const secret = { card: '4111 1111 1111 1111', note: 'ą§¶€', nested: { ok: true } };
  const res = await server.trigger('private-encrypted-compat', 'sealed', secret);
  assert.equal(res.status, 200);
  await eventually(() => got.length >= 1, { timeoutMs: 3000, what: 'decrypted event' });
  await settle();
  assert.deepEqual(got, [secret]);

  const onWire = wire.filter((f) => f.event === 'sealed');
  assert.equal(onWire.length, 1);
  const raw = onWire[0].data as { nonce?: string; ciphertext?: string };
  assert.equal(typeof raw.nonce, 'string', 'the server relayed the SDK\'s {nonce, ciphertext} untouched');
  assert.equal(typeof raw.ciphertext, 'string');
  assert.ok(!JSON.stringify(onWire[0]).includes('4111'), 'no plaintext on the wire');
});

test('client events between two pusher-js clients on a private channel are delivered to the other and not echoed to the sender', async () => {
  const a = client();
  const b = client();
  await Promise.all([connected(a), connected(b)]);
  const ca = (await subscribe(a, 'private-compat-chat')).ch;
  const cb = (await subscribe(b, 'private-compat-chat')).ch;
  const atA = collect(ca, 'client-x');
  const atB = collect(cb, 'client-x');
  assert.equal(ca.trigger('client-x', { typing: true, who: 'a' }), true);
  await eventually(() => atB.length >= 1, { timeoutMs: 3000, what: 'client event at b' });
  assert.equal(cb.trigger('client-x', { typing: false, who: 'b' }), true);
  await eventually(() => atA.length >= 1, { timeoutMs: 3000, what: 'client event at a' });
  await settle();
  assert.deepEqual(atB, [{ typing: true, who: 'a' }]);
  assert.deepEqual(atA, [{ typing: false, who: 'b' }]);
});

test('client events on a presence channel carry the sender\'s user_id in pusher-js metadata', async () => {
  const ann = client({ presence: { user_id: 'ce-ann' } });
  const bob = client({ presence: { user_id: 'ce-bob' } });
  await Promise.all([connected(ann), connected(bob)]);
  const ca = (await subscribe(ann, 'presence-compat-chat')).ch;
  const cb = (await subscribe(bob, 'presence-compat-chat')).ch;
  const atBob: [unknown, unknown][] = [];
  cb.bind('client-wave', (d: unknown, meta: unknown) => atBob.push([d, meta]));
  const atAnn = collect(ca, 'client-wave');
  ca.trigger('client-wave', { hi: 1 });
  await eventually(() => atBob.length >= 1, { timeoutMs: 3000, what: 'client event at bob' });
  await settle();
  assert.deepEqual(atBob, [[{ hi: 1 }, { user_id: 'ce-ann' }]]);
  assert.deepEqual(atAnn, []);
});

test('channel queries through pusher.get: /channels with filter_by_prefix and info=user_count, /channels/<presence>, /channels/<presence>/users', async () => {
  const u1a = client({ presence: { user_id: 'q-1' } });
  const u1b = client({ presence: { user_id: 'q-1' } });
  const u2 = client({ presence: { user_id: 'q-2' } });
  const pub = client();
  await Promise.all([u1a, u1b, u2, pub].map(connected));
  await Promise.all([u1a, u1b, u2].map((c) => subscribe(c, 'presence-query-room')));
  await subscribe(u2, 'presence-query-other');
  await subscribe(pub, 'query-public');

  const list = await server.get({ path: '/channels', params: { filter_by_prefix: 'presence-query-', info: 'user_count' } });
  assert.equal(list.status, 200);
  assert.deepEqual(await list.json(), {
    channels: { 'presence-query-room': { user_count: 2 }, 'presence-query-other': { user_count: 1 } },
  });

  const plain = await server.get({ path: '/channels', params: { filter_by_prefix: 'query-' } });
  assert.deepEqual(await plain.json(), { channels: { 'query-public': {} } });

  const one = await server.get({ path: '/channels/presence-query-room', params: { info: 'user_count' } });
  assert.equal(one.status, 200);
  assert.deepEqual(await one.json(), { occupied: true, user_count: 2 });

  const bare = await server.get({ path: '/channels/presence-query-room' });
  assert.deepEqual(await bare.json(), { occupied: true });

  const empty = await server.get({ path: '/channels/presence-query-nobody', params: { info: 'user_count' } });
  assert.equal(empty.status, 200);
  const emptyBody = (await empty.json()) as { occupied: boolean; user_count?: number };
  assert.equal(emptyBody.occupied, false);
  assert.ok(emptyBody.user_count === undefined || emptyBody.user_count === 0);

  const users = await server.get({ path: '/channels/presence-query-room/users' });
  assert.equal(users.status, 200);
  const body = (await users.json()) as { users: { id: string }[] };
  assert.deepEqual(body.users.map((u) => u.id).sort(), ['q-1', 'q-2']);

  // One of q-1's sockets leaves: still a member; the last one leaves: gone.
  u1a.unsubscribe('presence-query-room');
  await settle();
  const after1 = await server.get({ path: '/channels/presence-query-room', params: { info: 'user_count' } });
  assert.deepEqual(await after1.json(), { occupied: true, user_count: 2 });
  u1b.disconnect();
  await eventually(() => u1b.connection.state === 'disconnected', { timeoutMs: 3000, what: 'u1b disconnected' });
  let users2: { users: { id: string }[] } = { users: [] };
  await waitUntil(
    async () => {
      users2 = (await (await server.get({ path: '/channels/presence-query-room/users' })).json()) as typeof users2;
      return users2.users.length === 1;
    },
    { timeoutMs: 3000, intervalMs: 50 },
  );
  assert.deepEqual(users2.users.map((u) => u.id), ['q-2']);

  // The SDK rejects non-2xx answers with a PusherRequestError carrying the status.
  await assert.rejects(server.get({ path: '/channels/query-public/users' }), (err: { status?: number }) => {
    assert.equal(err.status, 400, '/users on a non-presence channel is a 400 (spec §9.3)');
    return true;
  });
  await assert.rejects(server.get({ path: '/channels', params: { filter_by_prefix: 'query-', info: 'user_count' } }), (err: { status?: number }) => {
    assert.equal(err.status, 400, 'info=user_count needs a presence- prefix (spec §9.3)');
    return true;
  });
});

test('socket exclusion: pusher.trigger with { socket_id } skips exactly that connection', async () => {
  const a = client();
  const b = client();
  const c = client();
  const [sa] = await Promise.all([connected(a), connected(b), connected(c)]);
  const ga = collect((await subscribe(a, 'private-compat-excl')).ch, 'update');
  const gb = collect((await subscribe(b, 'private-compat-excl')).ch, 'update');
  const gc = collect((await subscribe(c, 'compat-excl-public')).ch, 'update');
  const res = await server.trigger(['private-compat-excl', 'compat-excl-public'], 'update', { v: 1 }, { socket_id: sa });
  assert.equal(res.status, 200);
  await eventually(() => gb.length >= 1 && gc.length >= 1, { timeoutMs: 3000, what: 'b and c got the event' });
  await server.trigger('private-compat-excl', 'update', { v: 2 });
  await eventually(() => ga.length >= 1 && gb.length >= 2, { timeoutMs: 3000, what: 'the unexcluded event reached a and b' });
  await settle();
  assert.deepEqual(ga, [{ v: 2 }], 'the excluded socket got only the second event');
  assert.deepEqual(gb, [{ v: 1 }, { v: 2 }]);
  assert.deepEqual(gc, [{ v: 1 }]);
});

test('pusher.triggerBatch delivers each event to its own channel, including an encrypted one, and honours per-event socket_id', async () => {
  const a = client();
  const b = client();
  const [sa] = await Promise.all([connected(a), connected(b)]);
  const pubA = (await subscribe(a, 'compat-batch-1')).ch;
  const pubB = (await subscribe(b, 'compat-batch-1')).ch;
  const twoA = (await subscribe(a, 'compat-batch-2')).ch;
  const encB = (await subscribe(b, 'private-encrypted-compat-batch')).ch;
  const seenA: [string, unknown][] = [];
  const seenB: [string, unknown][] = [];
  pubA.bind_global((e: string, d: unknown) => !e.startsWith('pusher') && seenA.push([`1:${e}`, d]));
  twoA.bind_global((e: string, d: unknown) => !e.startsWith('pusher') && seenA.push([`2:${e}`, d]));
  pubB.bind_global((e: string, d: unknown) => !e.startsWith('pusher') && seenB.push([`1:${e}`, d]));
  encB.bind_global((e: string, d: unknown) => !e.startsWith('pusher') && seenB.push([`enc:${e}`, d]));

  const res = await server.triggerBatch([
    { channel: 'compat-batch-1', name: 'first', data: { n: 1 } },
    { channel: 'compat-batch-2', name: 'second', data: 'two' },
    { channel: 'private-encrypted-compat-batch', name: 'third', data: { sealed: 'ą§' } },
    { channel: 'compat-batch-1', name: 'fourth', data: { n: 4 }, socket_id: sa },
  ]);
  assert.equal(res.status, 200);
  await eventually(() => seenA.length >= 2 && seenB.length >= 3, { timeoutMs: 3000, what: () => `a ${JSON.stringify(seenA)} b ${JSON.stringify(seenB)}` });
  await settle();
  assert.deepEqual(seenA, [
    ['1:first', { n: 1 }],
    ['2:second', 'two'],
  ]);
  assert.deepEqual(seenB, [
    ['1:first', { n: 1 }],
    ['enc:third', { sealed: 'ą§' }],
    ['1:fourth', { n: 4 }],
  ]);
});
