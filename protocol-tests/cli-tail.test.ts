// `ripple tail` as a process against a running node: the app's live log in a terminal (with the
// operator token, or with the app's own key and secret), filtered by channel and type, with the
// doctor's explanation under a refusal, payloads that cannot move the cursor; and clear refusals
// and usage errors.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnCli, type CliProcess } from '../src/testing/cli-process.js';
import { eventually } from '../src/testing/eventually.js';
import { startNode, type NodeHandle } from '../src/testing/harness.js';
import { RawClient, privateAuth } from '../src/testing/raw-client.js';
import { rest } from '../src/testing/sign-rest.js';

const TOKEN = 'tail-operator-token-0123456789';
const a1 = { id: 'a1', key: 'k1', secret: 's1' };
const a2 = { id: 'a2', key: 'k2', secret: 's2' };
let node: NodeHandle;
const tails: CliProcess[] = [];
const clients: RawClient[] = [];

before(async () => {
  node = await startNode({ config: { apps: [a1, a2] }, env: { OPERATOR_TOKEN: TOKEN } });
});
after(async () => {
  for (const c of clients) c.ws.terminate();
  await Promise.all(tails.map((t) => t.stop(2000)));
  await node?.stop();
});

/** Starts `ripple tail` and waits until it watches (or exits). */
async function tail(args: string[], env: Record<string, string> = { OPERATOR_TOKEN: TOKEN }): Promise<CliProcess> {
  const t = spawnCli(['tail', '--url', node.url, ...args], env);
  tails.push(t);
  await eventually(() => t.hasExited() || t.stderr().includes('watching app'), { timeoutMs: 20_000, what: () => `tail to start; stderr: ${t.stderr()}` });
  return t;
}

async function printed(t: CliProcess, re: RegExp): Promise<string> {
  await eventually(() => re.test(t.stdout()), { timeoutMs: 10_000, what: () => `${re} in tail's output:\n${t.stdout()}\n${t.stderr()}` });
  return t.stdout();
}

test('ripple tail streams the app\'s log with the doctor\'s explanations, and stops on SIGINT', async () => {
  const t = await tail(['--app', a1.id]);
  await printed(t, /watching/);
  const c = await RawClient.connect(node.port, a1.key);
  clients.push(c);
  await printed(t, new RegExp(`connection_opened .*socket=${c.socketId.replace('.', '\\.')}`));
  await c.subscribe('private-x', privateAuth(a1.key, a2.secret, c.socketId, 'private-x'));
  const out = await printed(t, /your signature matches: signed with another app's secret\n    that app: a2/);
  assert.match(out, /subscription_refused +private-x/);
  assert.match(out, new RegExp(`server signed: "${c.socketId.replace('.', '\\.')}:private-x"`));
  assert.equal((await rest(node.url, a1, 'POST', `/apps/${a1.id}/events`, { name: 'ev', channel: 'ch', data: 'line1\n\u001b[2Jcleared' })).status, 200);
  const msg = await printed(t, /api_message +ch ev/);
  assert.match(msg, /data=line1\\n\\u001b\[2Jcleared/);
  assert.doesNotMatch(msg, /\u001b/, 'no escape sequence reaches the terminal');
  t.process.kill('SIGINT');
  assert.deepEqual(await t.exited, { code: 0, signal: null });
});

test('ripple tail with the app\'s own key and secret, filtered by channel and type, as JSON lines', async () => {
  const t = await tail(['--app', a1.id, '--key', a1.key, '--secret', a1.secret, '--channel', 'wanted', '--type', 'subscribed', '--json'], {});
  const c = await RawClient.connect(node.port, a1.key);
  clients.push(c);
  await c.subscribe('other');
  await c.subscribe('wanted');
  await printed(t, /"channel":"wanted"/);
  const lines = t.stdout().trim().split('\n').map((l) => JSON.parse(l) as { type: string; channel?: string });
  assert.deepEqual(lines.map((l) => [l.type, l.channel]), [['subscribed', 'wanted']]);
});

test('ripple tail refuses another app\'s secret, a wrong token and a node without a console, and explains its usage', async () => {
  const wrongSecret = spawnCli(['tail', '--url', node.url, '--app', a1.id, '--key', a1.key, '--secret', a2.secret], {});
  assert.equal((await wrongSecret.exited).code, 1);
  assert.match(wrongSecret.stderr(), /key and secret were refused: 401 Invalid signature/);
  const wrongToken = spawnCli(['tail', '--url', node.url, '--app', a1.id, '--token', 'nope'], {});
  assert.equal((await wrongToken.exited).code, 1);
  assert.match(wrongToken.stderr(), /401/);
  const usage = spawnCli(['tail', '--url', node.url], { OPERATOR_TOKEN: TOKEN });
  assert.equal((await usage.exited).code, 2);
  assert.match(usage.stderr(), /--app is needed/);
  const noConsole = await startNode({ config: { apps: [a1] }, env: { OPERATOR_TOKEN: '' } });
  try {
    const off = spawnCli(['tail', '--url', noConsole.url, '--app', a1.id, '--token', TOKEN], {});
    assert.equal((await off.exited).code, 1);
    assert.match(off.stderr(), /needs OPERATOR_TOKEN set/);
    const offOwner = spawnCli(['tail', '--url', noConsole.url, '--app', a1.id, '--key', a1.key, '--secret', a1.secret], {});
    assert.equal((await offOwner.exited).code, 1);
    assert.match(offOwner.stderr(), /needs OPERATOR_TOKEN set/);
  } finally {
    await noConsole.stop();
  }
});
