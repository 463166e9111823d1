// Issue 23 point 5: a draining node first stops taking handshakes (its listening socket closed, so
// the kernel refuses new connections, or hands them to the other processes on a shared port), then
// closes its live connections with 4200. A pusher-js client told 4200 reconnects at once, and none of
// its reconnects may reach the draining node: they go elsewhere instead of making a storm of refused
// handshakes here. SIGTERM, SIGINT and SIGHUP drain the same way.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { startNode, type NodeHandle } from '../src/testing/harness.js';
import { sleep } from '../src/testing/eventually.js';
import { Pusher } from '../src/testing/pusher-js.js';
import { RawClient } from '../src/testing/raw-client.js';

const clients: { disconnect(): void }[] = [];
const nodes: NodeHandle[] = [];
after(async () => {
  for (const c of clients) c.disconnect();
  await Promise.all(nodes.map((n) => n.kill()));
});

/** Whether a new TCP connection to the port is refused right now. */
function refusesConnections(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.once('error', () => resolve(true));
  });
}

interface LogLine {
  msg: string;
  signal?: string;
  reason?: string;
}

function logLines(out: string): LogLine[] {
  return out
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as LogLine);
}

for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
  test(`${signal}: the port is closed before the 4200s go out, so a pusher-js client's reconnects never reach the draining node (at most one handshake), and the process exits 0`, async () => {
    // Debug logs every handshake the node answers: opened, or refused (4200 "draining" among them).
    const n = await startNode({ env: { LOG_LEVEL: 'debug', SHUTDOWN_TIMEOUT_MS: '10000' } });
    nodes.push(n);
    const raw = await RawClient.connect(n.port, 'app-key');
    const client = new Pusher('app-key', {
      cluster: 'mt1',
      wsHost: '127.0.0.1',
      wsPort: n.port,
      httpHost: '127.0.0.1',
      httpPort: n.port,
      forceTLS: false,
      // the WebSocket first and, when it fails, the HTTP fallback: every way pusher-js knocks again
      enabledTransports: ['ws', 'xhr_streaming', 'xhr_polling'],
      disableStats: true,
    });
    clients.push(client);
    await new Promise<void>((resolve) => client.connection.bind('connected', () => resolve()));
    const statesAfter: string[] = [];
    client.connection.bind('state_change', (s: { current: string }) => statesAfter.push(s.current));

    n.process.kill(signal);
    const closed = await raw.closed;
    // At the moment clients hear 4200, the node already takes no new connection.
    const refusedAtClose = await refusesConnections(n.port);
    assert.equal(closed.code, 4200, 'live connections are closed with 4200');
    assert.equal(refusedAtClose, true, 'the listening socket was closed before the 4200s went out');
    assert.deepEqual(await n.exited, { code: 0, signal: null }, `${signal} drains and exits 0:\n${n.output()}`);
    // pusher-js keeps trying meanwhile; give it a moment more against the closed port.
    await sleep(500);
    client.disconnect();

    const lines = logLines(n.output());
    const from = lines.findIndex((l) => l.msg === 'shutting down');
    assert.ok(from >= 0, `"shutting down" is logged:\n${n.output()}`);
    assert.equal(lines[from].signal, signal);
    assert.ok(lines.slice(from).some((l) => l.msg === 'draining') && lines.at(-1)?.msg === 'stopped', n.output());
    const handshakes = lines.slice(from).filter((l) => l.msg === 'connection opened' || l.msg === 'connection refused');
    assert.ok(handshakes.length <= 1, `handshakes that reached the draining node: ${JSON.stringify(handshakes)}`);
    assert.ok(statesAfter.includes('connecting'), `pusher-js tried to reconnect (${statesAfter.join(', ')})`);
  });
}
