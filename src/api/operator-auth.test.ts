import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isOperator } from './operator-auth.js';

const token = 'an-operator-token-of-some-length';

test('only the configured token, sent as a Bearer credential, makes a request the operator\'s', () => {
  assert.equal(isOperator(`Bearer ${token}`, token), true);
  assert.equal(isOperator(`bearer ${token}`, token), true, 'the scheme is case-insensitive (RFC 9110 §11.1)');
  assert.equal(isOperator(`Bearer ${token}x`, token), false);
  assert.equal(isOperator(token, token), false, 'no scheme');
  assert.equal(isOperator(`Basic ${token}`, token), false);
  assert.equal(isOperator(undefined, token), false);
  assert.equal(isOperator('Bearer ', token), false);
  assert.equal(isOperator(`Bearer ${token}`, undefined), false, 'no token configured: nobody is the operator');
});
