// `ripple apps ...` against a running node whose apps are in a PostgreSQL table: each action does
// what it says in the table and on the node, secrets are printed masked except a new one, once, and
// mistakes get a usage error (exit 2) or the API's refusal (exit 1).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnCli } from '../src/testing/cli-process.js';
import { SOKETI_TABLE, testDatabase, type TestDatabase } from '../src/testing/databases.js';
import { startNode, type NodeHandle } from '../src/testing/harness.js';
import { RawClient } from '../src/testing/raw-client.js';
import { rest } from '../src/testing/sign-rest.js';

const TOKEN = 'cli-operator-token-0123456789';
let db: TestDatabase;
let node: NodeHandle;

before(async () => {
  db = await testDatabase('postgres');
  await db.sql(SOKETI_TABLE.postgres);
  node = await startNode({ env: { OPERATOR_TOKEN: TOKEN, APP_STORE_DRIVER: 'postgres', APP_STORE_HOST: db.host, APP_STORE_USER: db.user, APP_STORE_DATABASE: db.name } });
});

after(async () => {
  await node?.stop();
  await db?.drop();
});

async function apps(args: string[], env: Record<string, string> = { OPERATOR_TOKEN: TOKEN, PORT: String(node.port) }) {
  const cli = spawnCli(['apps', ...args], env);
  const { code } = await cli.exited;
  return { code, out: cli.stdout(), err: cli.stderr() };
}

test('ripple apps add, list, update, disable, rotate-secret and delete, through the node', async () => {
  const added = await apps(['add', '--id=cli', '--key=cli-key', '--max-connections=3', '--enable-client-messages=true']);
  assert.equal(added.code, 0, added.err);
  const secret = /secret: ([0-9a-f]{40})/.exec(added.out)?.[1];
  assert.ok(secret, added.out);
  assert.deepEqual(await db.sql('SELECT id, "key", max_connections, enable_client_messages FROM apps'), [{ id: 'cli', key: 'cli-key', max_connections: 3, enable_client_messages: 1 }]);

  const listed = await apps(['list']);
  assert.equal(listed.code, 0, listed.err);
  assert.match(listed.out, new RegExp(`^cli\\s+cli-key\\s+…${secret.slice(-4)}\\s+yes\\s+3\\s+0$`, 'm'));
  assert.ok(!listed.out.includes(secret), 'a listing never shows a secret in full');
  assert.ok(!(await apps(['list', '--json'])).out.includes(secret));

  assert.equal((await apps(['update', 'cli', '--max_connections=1'])).code, 0);
  assert.equal((await db.sql('SELECT max_connections FROM apps'))[0].max_connections, 1);

  const c = await RawClient.connect(node.port, 'cli-key');
  assert.equal((await apps(['disable', 'cli'])).code, 0);
  assert.equal((await c.closed).code, 4003);
  assert.equal((await apps(['update', 'cli', '--enabled=true'])).code, 0);

  const rotated = await apps(['rotate-secret', 'cli', '--overlap', '60']);
  assert.equal(rotated.code, 0, rotated.err);
  const fresh = /new secret ([0-9a-f]{40})/.exec(rotated.out)?.[1];
  assert.ok(fresh && fresh !== secret, rotated.out);
  for (const s of [secret, fresh]) assert.equal((await rest(node.url, { id: 'cli', key: 'cli-key', secret: s }, 'GET', '/apps/cli/channels')).status, 200);

  assert.equal((await apps(['delete', 'cli'])).code, 0);
  assert.deepEqual(await db.sql('SELECT id FROM apps'), []);
  assert.ok(!node.output().includes(secret) && !node.output().includes(fresh), 'no secret in the node\'s log');
});

test('ripple apps: usage errors exit 2, refusals exit 1 with the reason', async () => {
  const noToken = await apps(['list'], { PORT: String(node.port) });
  assert.equal(noToken.code, 2);
  assert.match(noToken.err, /no operator token/);
  assert.equal((await apps(['frobnicate'])).code, 2);
  assert.equal((await apps(['update', 'x'])).code, 2, 'update without fields');
  assert.match((await apps(['add', '--colour=red'])).err, /unknown option --colour/);
  const missing = await apps(['delete', 'nope']);
  assert.equal(missing.code, 1);
  assert.match(missing.err, /404 App nope does not exist/);
  const wrong = await apps(['list', '--token', 'not-the-token-at-all']);
  assert.equal(wrong.code, 1);
  assert.match(wrong.err, /^ripple apps: 401 /);
  const help = await apps(['--help']);
  assert.equal(help.code, 0);
  assert.match(help.out, /rotate-secret ID/);
});
