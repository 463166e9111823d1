// Who may watch what: the operator token, an app owner's session (derived from the secret, so a
// changed secret or its expiry ends it), nothing else.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { StaticAppStore } from '../apps/static-store.js';
import { AppSchema } from '../config/schema.js';
import { accessOf, mayWatch, sessionToken, SESSION_TTL_S } from './access.js';

const apps = new StaticAppStore([AppSchema.parse({ id: 'a1', key: 'k1', secret: 's1' }), AppSchema.parse({ id: 'a2', key: 'k2', secret: 's2' })]);
const operator = 'operator-token-0123456789';

test('the operator token opens every app; a session opens its app only, until it expires', async () => {
  assert.deepEqual(await accessOf(`Bearer ${operator}`, operator, apps), { operator: true });
  assert.equal(await accessOf(`Bearer ${operator}`, undefined, apps), undefined, 'no operator token configured: nobody is the operator');
  const now = Date.now();
  const { token, expiresAt } = sessionToken(apps.all()[0], now);
  assert.equal(expiresAt, (Math.floor(now / 1000) + SESSION_TTL_S) * 1000);
  assert.doesNotMatch(token, /s1/);
  const access = await accessOf(`Bearer ${token}`, operator, apps, now);
  assert.deepEqual(access, { operator: false, appId: 'a1' });
  assert.equal(mayWatch(access!, 'a1'), true);
  assert.equal(mayWatch(access!, 'a2'), false);
  assert.equal(await accessOf(`Bearer ${token}`, operator, apps, expiresAt), undefined, 'expired');
  // The same token's app id swapped for another app's: its MAC no longer holds.
  const [p, , exp, mac] = token.split('.');
  assert.equal(await accessOf(`Bearer ${p}.${Buffer.from('a2').toString('base64url')}.${exp}.${mac}`, operator, apps, now), undefined);
  assert.equal(await accessOf(undefined, operator, apps), undefined);
  assert.equal(await accessOf('Bearer rc1.x', operator, apps), undefined);
});

test('a channel-auth signature a client can ask a backend for is not a session token', async () => {
  // A careless auth endpoint signs `<socket_id>:<channel_name>` for whatever the client sends; with
  // socket_id "ripple-console:a1" and a channel named after a time it would sign the string the token
  // once was. The token's key is derived from the secret, so that signature opens nothing.
  const expires = Math.floor(Date.now() / 1000) + 600;
  const authSignature = createHmac('sha256', 's1').update(`ripple-console:a1:${expires}`).digest('hex');
  const forged = `rc1.${Buffer.from('a1').toString('base64url')}.${expires}.${authSignature}`;
  assert.equal(await accessOf(`Bearer ${forged}`, operator, apps), undefined);
});
