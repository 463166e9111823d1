// Laravel Echo (broadcaster 'pusher', the pusher-js class passed in) against the server, with a custom
// authorizer that signs through the `pusher` server SDK: public channel listen (with and without Echo's
// namespace), private channels, presence here/joining/leaving, and whisper/listenForWhisper.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import PusherServer from 'pusher';
import Echo from 'laravel-echo';
import { startNode, type NodeHandle } from '../src/testing/harness.js';
import { eventually, sleep } from '../src/testing/eventually.js';
import { Pusher } from '../src/testing/pusher-js.js';

const app = { id: 'echo-id', key: 'echo-key', secret: 'echo-secret' };

let node: NodeHandle;
let server: PusherServer;
const echoes: Echo<'pusher'>[] = [];

before(async () => {
  node = await startNode({ config: { apps: [{ ...app, enableClientMessages: true }] } });
  server = new PusherServer({ appId: app.id, key: app.key, secret: app.secret, host: '127.0.0.1', port: String(node.port), useTLS: false });
});

after(async () => {
  for (const e of echoes) e.disconnect();
  await node?.kill();
});

interface User {
  id: string;
  name: string;
}

/** An Echo instance whose authorizer signs with `signer`; `user` becomes the presence member (id + info). */
function echo(user?: User, signer: PusherServer = server): Echo<'pusher'> {
  const e = new Echo<'pusher'>({
    broadcaster: 'pusher',
    // Echo types this as pusher-js's module namespace (see src/testing/pusher-js.ts); at run
    // time it is constructed with `new`, which is what the class is.
    Pusher: Pusher as never,
    key: app.key,
    cluster: 'mt1',
    wsHost: '127.0.0.1',
    wsPort: node.port,
    forceTLS: false,
    disableStats: true,
    enabledTransports: ['ws'],
    authorizer: (channel: { name: string }) => ({
      authorize: (socketId: string, cb: (err: Error | null, data: PusherServer.ChannelAuthResponse | null) => void) => {
        try {
          const presence = channel.name.startsWith('presence-') && user ? { user_id: user.id, user_info: user } : undefined;
          cb(null, signer.authorizeChannel(socketId, channel.name, presence));
        } catch (err) {
          cb(err as Error, null);
        }
      },
    }),
  });
  echoes.push(e);
  return e;
}

async function connected(e: Echo<'pusher'>): Promise<string> {
  await eventually(() => e.connectionStatus() === 'connected', { timeoutMs: 5000, what: () => `connected (status ${e.connectionStatus()})` });
  return e.socketId()!;
}

/** Resolves when Echo's subscribed() callback runs; rejects on error(). */
function ready<C extends { subscribed(cb: CallableFunction): C; error(cb: CallableFunction): C }>(ch: C, name: string): Promise<C> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`${name}: not subscribed in time`)), 5000);
    ch.subscribed(() => {
      clearTimeout(t);
      resolve(ch);
    });
    ch.error((err: unknown) => {
      clearTimeout(t);
      reject(new Error(`${name}: subscription error ${JSON.stringify(err)}`));
    });
  });
}

test('Echo.channel().listen(".event-name") receives pusher.trigger; without the dot, Echo\'s App\\Events namespace is matched', async () => {
  const e = echo();
  await connected(e);
  const dotted: unknown[] = [];
  const namespaced: unknown[] = [];
  const ch = e.channel('echo-public');
  ch.listen('.order-shipped', (d: unknown) => dotted.push(d)).listen('OrderPaid', (d: unknown) => namespaced.push(d));
  await ready(ch, 'echo-public');

  await server.trigger('echo-public', 'order-shipped', { order: { id: 1, total: '9.99' } });
  // What Laravel broadcasts for App\Events\OrderPaid: the fully qualified class name as the event name.
  await server.trigger('echo-public', 'App\\Events\\OrderPaid', { order: { id: 2 } });
  await eventually(() => dotted.length >= 1 && namespaced.length >= 1, { timeoutMs: 3000, what: () => `dotted ${JSON.stringify(dotted)} namespaced ${JSON.stringify(namespaced)}` });
  await sleep(300);
  assert.deepEqual(dotted, [{ order: { id: 1, total: '9.99' } }]);
  assert.deepEqual(namespaced, [{ order: { id: 2 } }]);
});

test('Echo.private() subscribes through the authorizer and receives events; a bad signature reaches Echo\'s error() callback', async () => {
  const e = echo();
  await connected(e);
  const got: unknown[] = [];
  const ch = e.private('echo-orders.1');
  ch.listen('.status', (d: unknown) => got.push(d));
  await ready(ch, 'private-echo-orders.1');
  await server.trigger('private-echo-orders.1', 'status', { state: 'shipped' });
  await eventually(() => got.length >= 1, { timeoutMs: 3000, what: 'private event' });
  assert.deepEqual(got, [{ state: 'shipped' }]);

  const wrong = new PusherServer({ appId: app.id, key: app.key, secret: 'wrong-secret', host: '127.0.0.1', port: String(node.port), useTLS: false });
  const bad = echo(undefined, wrong);
  await connected(bad);
  const errors: unknown[] = [];
  const badGot: unknown[] = [];
  bad.private('echo-orders.1').error((err: unknown) => errors.push(err)).listen('.status', (d: unknown) => badGot.push(d));
  await eventually(() => errors.length >= 1, { timeoutMs: 3000, what: 'error() callback for the refused subscription' });
  await server.trigger('private-echo-orders.1', 'status', { state: 'delivered' });
  await eventually(() => got.length >= 2, { timeoutMs: 3000, what: 'second private event' });
  await sleep(300);
  assert.deepEqual(badGot, []);
  assert.equal(bad.connectionStatus(), 'connected', 'the refused subscription leaves the connection open');
});

test('Echo.join(): here() lists the members, joining() and leaving() report the other user', async () => {
  const ann: User = { id: 'echo-ann', name: 'Ann ą§' };
  const bob: User = { id: 'echo-bob', name: 'Bob' };
  const ea = echo(ann);
  const eb = echo(bob);
  await Promise.all([connected(ea), connected(eb)]);

  const hereA: User[][] = [];
  const joining: User[] = [];
  const leaving: User[] = [];
  const roomA = ea
    .join('echo-room')
    .here((users: User[]) => hereA.push(users))
    .joining((u: User) => joining.push(u))
    .leaving((u: User) => leaving.push(u));
  await ready(roomA, 'presence-echo-room (ann)');
  await eventually(() => hereA.length >= 1, { timeoutMs: 3000, what: 'here() for ann' });
  assert.deepEqual(hereA, [[ann]]);

  const hereB: User[][] = [];
  const roomB = eb.join('echo-room').here((users: User[]) => hereB.push(users));
  await ready(roomB, 'presence-echo-room (bob)');
  await eventually(() => hereB.length >= 1, { timeoutMs: 3000, what: 'here() for bob' });
  assert.deepEqual(
    hereB[0].slice().sort((x, y) => x.id.localeCompare(y.id)),
    [ann, bob],
  );
  await eventually(() => joining.length >= 1, { timeoutMs: 3000, what: 'joining() at ann' });
  assert.deepEqual(joining, [bob]);

  eb.leave('echo-room');
  await eventually(() => leaving.length >= 1, { timeoutMs: 3000, what: 'leaving() at ann' });
  await sleep(300);
  assert.deepEqual(leaving, [bob]);
  assert.deepEqual(joining, [bob]);
  assert.deepEqual(hereA, [[ann]], 'here() runs once, on subscription');
});

test('whisper/listenForWhisper: client events between two Echo clients on private and presence channels, not echoed to the sender', async () => {
  const ann: User = { id: 'w-ann', name: 'Ann' };
  const bob: User = { id: 'w-bob', name: 'Bob' };
  const ea = echo(ann);
  const eb = echo(bob);
  await Promise.all([connected(ea), connected(eb)]);

  const privA = await ready(ea.private('echo-chat'), 'private-echo-chat (ann)');
  const privB = await ready(eb.private('echo-chat'), 'private-echo-chat (bob)');
  const typingAtA: unknown[] = [];
  const typingAtB: unknown[] = [];
  privA.listenForWhisper('typing', (d: unknown) => typingAtA.push(d));
  privB.listenForWhisper('typing', (d: unknown) => typingAtB.push(d));
  privA.whisper('typing', { name: 'Ann', typing: true });
  await eventually(() => typingAtB.length >= 1, { timeoutMs: 3000, what: 'whisper at bob' });

  const roomA = await ready(ea.join('echo-whisper-room'), 'presence (ann)');
  const roomB = await ready(eb.join('echo-whisper-room'), 'presence (bob)');
  const wavesAtA: unknown[] = [];
  const wavesAtB: unknown[] = [];
  roomA.listenForWhisper('wave', (d: unknown) => wavesAtA.push(d));
  roomB.listenForWhisper('wave', (d: unknown) => wavesAtB.push(d));
  roomB.whisper('wave', { from: 'bob' });
  await eventually(() => wavesAtA.length >= 1, { timeoutMs: 3000, what: 'presence whisper at ann' });
  await sleep(300);

  assert.deepEqual(typingAtB, [{ name: 'Ann', typing: true }]);
  assert.deepEqual(typingAtA, [], 'not echoed to the private whisperer');
  assert.deepEqual(wavesAtA, [{ from: 'bob' }]);
  assert.deepEqual(wavesAtB, [], 'not echoed to the presence whisperer');
});
