// The README's snippets do what they say (issue 23 point 10): the curl block, run by bash as written
// against a real node (with its URL pointed at it), triggers an event a client receives and reads the
// channels; and pusher-js in Node, as the README configures it, authorizes a private channel through
// an absolute auth endpoint, where a relative one fails with AuthError and status 0.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import PusherServer from 'pusher';
import { defaultApp, repoRoot, startNode, type NodeHandle } from '../src/testing/harness.js';
import { Pusher } from '../src/testing/pusher-js.js';
import { RawClient } from '../src/testing/raw-client.js';

const readme = readFileSync(join(repoRoot, 'README.md'), 'utf8');
const nodes: NodeHandle[] = [];
const servers: Server[] = [];
after(async () => {
  await Promise.all(nodes.map((n) => n.kill()));
  for (const s of servers) s.close();
});

/** The fenced block after `<!-- marker ... -->` in the README. */
function block(marker: string): string {
  const at = readme.indexOf(`<!-- ${marker}`);
  assert.ok(at >= 0, `README has the ${marker} block`);
  const m = /```\w*\n([\s\S]*?)\n```/.exec(readme.slice(at));
  return m![1];
}

test('the README\'s curl block, run as written: the event reaches a subscriber, the channel queries answer', async () => {
  const n = await startNode();
  nodes.push(n);
  const client = await RawClient.connect(n.port, defaultApp.key);
  await client.subscribe('my-channel');
  const script = block('rest-curl').replace('URL=http://127.0.0.1:6001', `URL=http://127.0.0.1:${n.port}`);
  const r = spawnSync('bash', ['-euo', 'pipefail', '-c', script], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.status, 0, r.stderr);
  const [trigger, channel, channels] = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.deepEqual(trigger, {});
  const got = await client.nextEvent('my-event', 'my-channel');
  assert.deepEqual(JSON.parse(got.data as string), { hello: 'world' });
  assert.equal(channel.occupied, true, r.stdout);
  assert.deepEqual(channels, { channels: { 'my-channel': {} } });
  await client.close();
});

test('pusher-js in Node authorizes a private channel through an absolute endpoint, as the README says; a relative one fails with status 0', async () => {
  const n = await startNode();
  nodes.push(n);
  // The app's own backend: signs with the pusher SDK, as an app would.
  const signer = new PusherServer({ appId: defaultApp.id, key: defaultApp.key, secret: defaultApp.secret, host: '127.0.0.1', port: String(n.port), useTLS: false });
  const backend = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      const form = new URLSearchParams(body);
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(signer.authorizeChannel(form.get('socket_id')!, form.get('channel_name')!)));
    });
  });
  servers.push(backend);
  await new Promise<void>((resolve) => backend.listen(0, '127.0.0.1', resolve));
  const backendPort = (backend.address() as { port: number }).port;

  const subscribe = (endpoint: string) =>
    new Promise<{ ok: true } | { ok: false; status: number; type: string }>((resolve) => {
      const client = new Pusher(defaultApp.key, {
        cluster: 'mt1',
        wsHost: '127.0.0.1',
        wsPort: n.port,
        forceTLS: false,
        enabledTransports: ['ws', 'wss'],
        disableStats: true,
        channelAuthorization: { endpoint, transport: 'ajax' },
      });
      const ch = client.subscribe('private-readme');
      ch.bind('pusher:subscription_succeeded', () => {
        client.disconnect();
        resolve({ ok: true });
      });
      ch.bind('pusher:subscription_error', (e: { status: number; type: string }) => {
        client.disconnect();
        resolve({ ok: false, status: e.status, type: e.type });
      });
    });
  assert.deepEqual(await subscribe(`http://127.0.0.1:${backendPort}/pusher/auth`), { ok: true });
  assert.deepEqual(await subscribe('/pusher/auth'), { ok: false, status: 0, type: 'AuthError' });
});
