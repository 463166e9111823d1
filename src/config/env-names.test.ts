import { test } from 'node:test';
import assert from 'node:assert/strict';
import { editDistance, misspelledEnv, rippleEnvNames } from './env-names.js';
import { soketiEnvNames } from './soketi.js';

const known = new Set([...rippleEnvNames, ...soketiEnvNames]);

test('misspelt names that look like ours get a did-you-mean', () => {
  const env = { APP_SECERT: 'x', REDIS_ULR: 'x', SOKETI_DEFUALT_APP_KEY: 'x', SOKETI_PROT: 'x', SOCKETI_PORT: 'x', LOG_LEVLE: 'x' };
  assert.deepEqual(misspelledEnv(env, known), [
    'APP_SECERT is not a setting ripple reads; did you mean APP_SECRET?',
    'LOG_LEVLE is not a setting ripple reads; did you mean LOG_LEVEL?',
    'REDIS_ULR is not a setting ripple reads; did you mean REDIS_URL?',
    'SOCKETI_PORT is not a setting ripple reads; did you mean SOKETI_PORT?',
    'SOKETI_DEFUALT_APP_KEY is not a setting ripple reads; did you mean SOKETI_DEFAULT_APP_KEY?',
    'SOKETI_PROT is not a setting ripple reads; did you mean SOKETI_PORT?',
  ]);
});

test('names we read, and unrelated environment, never warn; an unknown SOKETI_ name is reported', () => {
  const env = {
    PATH: '/bin', HOME: '/root', HOSTNAME: 'h', NODE_ENV: 'production', NODE_OPTIONS: '', NODE_IP: '10.0.0.1', TERM: 'xterm',
    // a Laravel .env next to ours
    APP_ENV: 'local', APP_NAME: 'x', APP_URL: 'http://x', APP_DEBUG: 'true', REDIS_HOST: 'r', REDIS_PASSWORD: 'p', REDIS_PORT: '6379',
    LOG_CHANNEL: 'stack', CACHE_DRIVER: 'file', CACHE_STORE: 'redis', PUSHER_APP_ID: '1',
    PORT: '1', APP_SECRET: 's', SOKETI_DB_REDIS_HOST: 'r', SOKETI_DEFAULT_APP_MAX_CONNS: '1',
  };
  assert.deepEqual(misspelledEnv(env, known), []);
  assert.deepEqual(misspelledEnv({ SOKETI_SOMETHING_ELSE: '1' }, known), ['SOKETI_SOMETHING_ELSE is not a Soketi setting ripple knows; it is ignored']);
});

test('edit distance counts an adjacent swap as one edit', () => {
  assert.equal(editDistance('SECERT', 'SECRET'), 1);
  assert.equal(editDistance('abc', 'abc'), 0);
  assert.equal(editDistance('', 'abc'), 3);
  assert.equal(editDistance('kitten', 'sitting'), 3);
});
