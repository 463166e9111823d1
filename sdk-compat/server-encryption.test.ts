// Encrypted channels for every backend (issue: some languages' pusher SDKs cannot encrypt): with the
// app's encryptionMasterKeyBase64 in ripple's config, plain data triggered to a private-encrypted-
// channel is encrypted by the server as the official SDKs do, and pusher-js decrypts it; data an SDK
// already encrypted is relayed untouched; without the key nothing changes.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startNode, type NodeHandle } from '../src/testing/harness.js';
import { rest } from '../src/testing/sign-rest.js';
import { encryptData } from '../src/protocol/encryption.js';
import { eventually, sleep } from '../src/testing/eventually.js';
import { app, Clients, connected, masterKey, sdk, subscribed } from './support-users.js';

let keyed: NodeHandle;
let unkeyed: NodeHandle;
const clients = new Clients();

before(async () => {
  [keyed, unkeyed] = await Promise.all([
    startNode({ config: { apps: [{ ...app, encryptionMasterKeyBase64: masterKey }] } }),
    startNode({ config: { apps: [app] } }),
  ]);
});

after(async () => {
  clients.closeAll();
  await Promise.all([keyed, unkeyed].filter(Boolean).map((n) => n.kill()));
});

/** A REST trigger as an SDK that cannot encrypt sends it: `data` is the app's JSON text. */
async function plainTrigger(n: NodeHandle, body: object) {
  const res = await rest(n.url, app, 'POST', `/apps/${app.id}/events`, body);
  assert.equal(res.status, 200, JSON.stringify(res.body));
}

test('plain data triggered to an encrypted channel is encrypted by the server; pusher-js decrypts it; no plaintext on the wire', async () => {
  const c = clients.make(keyed.port, sdk(keyed.port));
  await connected(c);
  const ch = await subscribed(c, 'private-encrypted-vault');
  const got: unknown[] = [];
  ch.bind('sealed', (d: unknown) => got.push(d));
  const secret = { card: '4111 1111 1111 1111', note: 'ą§¶€' };
  await plainTrigger(keyed, { name: 'sealed', channel: 'private-encrypted-vault', data: JSON.stringify(secret) });
  await eventually(() => got.length === 1, { timeoutMs: 3000, what: 'the decrypted event' });
  assert.deepEqual(got, [secret]);
  const wire = c.frames.filter((f) => f.event === 'sealed');
  assert.equal(wire.length, 1);
  const data = wire[0].data as { nonce: string; ciphertext: string };
  assert.deepEqual(Object.keys(data).sort(), ['ciphertext', 'nonce']);
  assert.equal(Buffer.from(data.nonce, 'base64').length, 24);
  assert.ok(!JSON.stringify(wire[0]).includes('4111'), 'no plaintext on the wire');

  // A batch to two encrypted channels: each with its own channel key.
  const ch2 = await subscribed(c, 'private-encrypted-vault-2');
  const got2: unknown[] = [];
  ch2.bind('sealed', (d: unknown) => got2.push(d));
  const res = await rest(keyed.url, app, 'POST', `/apps/${app.id}/batch_events`, {
    batch: [
      { channel: 'private-encrypted-vault', name: 'sealed', data: '{"n":1}' },
      { channel: 'private-encrypted-vault-2', name: 'sealed', data: '{"n":2}' },
    ],
  });
  assert.equal(res.status, 200);
  await eventually(() => got.length === 2 && got2.length === 1, { timeoutMs: 3000, what: 'both batch events decrypted' });
  assert.deepEqual([got[1], got2[0]], [{ n: 1 }, { n: 2 }]);
});

test('data an SDK already encrypted is relayed byte for byte; the pusher SDK\'s own encryption still works', async () => {
  const c = clients.make(keyed.port, sdk(keyed.port));
  await connected(c);
  const ch = await subscribed(c, 'private-encrypted-relay');
  const got: unknown[] = [];
  ch.bind('sealed', (d: unknown) => got.push(d));
  const sealed = encryptData('private-encrypted-relay', Buffer.from(masterKey, 'base64'), JSON.stringify({ by: 'backend' }));
  await plainTrigger(keyed, { name: 'sealed', channel: 'private-encrypted-relay', data: sealed });
  await sdk(keyed.port).trigger('private-encrypted-relay', 'sealed', { by: 'sdk' });
  await eventually(() => got.length === 2, { timeoutMs: 3000, what: 'both events decrypted' });
  assert.deepEqual(got, [{ by: 'backend' }, { by: 'sdk' }]);
  assert.deepEqual(c.frames.filter((f) => f.event === 'sealed')[0].data, JSON.parse(sealed), 'relayed untouched');
});

test('without a master key in the config, plain data to an encrypted channel is relayed as sent (the server never encrypts or decrypts)', async () => {
  const c = clients.make(unkeyed.port, sdk(unkeyed.port));
  await connected(c);
  await subscribed(c, 'private-encrypted-plain');
  await plainTrigger(unkeyed, { name: 'sealed', channel: 'private-encrypted-plain', data: '{"visible":true}' });
  await sleep(300);
  const wire = c.frames.filter((f) => f.event === 'sealed');
  assert.deepEqual(wire.map((f) => f.data), [{ visible: true }], 'the frame carries the data as triggered');
});

test('a master key that is not base64 of 32 bytes stops the start with a message naming the field', async () => {
  const bad = await startNode({ config: { apps: [{ ...app, encryptionMasterKeyBase64: Buffer.alloc(16).toString('base64') }] }, expectExit: true });
  const { code } = await bad.exited;
  assert.notEqual(code, 0);
  assert.match(bad.output(), /encryptionMasterKeyBase64: must be base64 of exactly 32 bytes/);
});
