// hmacSha256Hex and md5Hex against node:crypto's Hmac and Hash objects, and RFC 4231's vectors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { hmacSha256Hex, md5Hex } from './signature.js';

test('hmacSha256Hex gives RFC 4231 test cases 2 and 6', () => {
  assert.equal(hmacSha256Hex('Jefe', 'what do ya want for nothing?'), '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843');
  // case 6: a 131-byte key (longer than a block: hashed first), here as latin1 0xaa bytes (not ASCII)
  const key = Buffer.alloc(131, 0xaa).toString('latin1');
  const expected = createHmac('sha256', Buffer.from(key, 'utf8')).update('Test Using Larger Than Block-Size Key - Hash Key First').digest('hex');
  assert.equal(hmacSha256Hex(key, 'Test Using Larger Than Block-Size Key - Hash Key First'), expected);
});

test('hmacSha256Hex equals createHmac for ASCII, non-ASCII, empty and long secrets and messages', () => {
  const secrets = ['', 'a', 'bench-secret', 'x'.repeat(64), 'y'.repeat(65), 'sécret', '秘密', randomBytes(24).toString('hex'), randomBytes(40).toString('base64')];
  const messages = ['', 'POST\n/apps/1/events\nauth_key=k&auth_timestamp=1&auth_version=1.0', 'ünïcødé ✓ message', 'z'.repeat(10_000)];
  for (const secret of secrets) {
    for (const message of messages) {
      const expected = createHmac('sha256', secret).update(message, 'utf8').digest('hex');
      assert.equal(hmacSha256Hex(secret, message), expected, `secret ${JSON.stringify(secret)}`);
      // the second call takes the cached pads
      assert.equal(hmacSha256Hex(secret, message), expected);
    }
  }
});

test('md5Hex equals a Hash object for buffers and strings', () => {
  for (const body of [Buffer.alloc(0), Buffer.from('{"name":"e","channel":"c","data":"d"}'), randomBytes(5000), 'ünïcødé']) {
    assert.equal(md5Hex(body), createHash('md5').update(body).digest('hex'));
  }
});
