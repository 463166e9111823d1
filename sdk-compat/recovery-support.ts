// Helpers for the message-recovery tests (recovery-*.test.ts): a loopback TCP proxy in front of the
// nodes, so a test can kill a client's connection abruptly or send its reconnect to another node, and
// steady publishers through the `pusher` server SDK whose events carry sequence numbers.
import { createServer, connect, type Socket } from 'node:net';
import assert from 'node:assert/strict';
import PusherServer from 'pusher';
import { sleep } from '../src/testing/eventually.js';

export interface CutProxy {
  port: number;
  /**
   * Closes every connection through the proxy at once, both ways, without a WebSocket close frame: the
   * client sees 1006. (A TCP reset would not be safer: libuv forbids resetting a socket whose end was
   * already shut down, and Node can then hang at exit.)
   */
  cut(): void;
  /**
   * Cuts, and holds new connections unanswered until up() forwards them: the client stays away while
   * a test publishes or restarts a node, and is back as soon as up() is called. (A refused connection
   * would not do: pusher-js in Node then waits out its 15 s connect timeout before it tries again.)
   */
  down(): void;
  up(): void;
  /** New connections go to this port from now on; open ones stay where they are until cut. */
  retarget(port: number): void;
  close(): Promise<void>;
}

/** A proxy on 127.0.0.1 to `targetPort` on 127.0.0.1. */
export async function startCutProxy(targetPort: number): Promise<CutProxy> {
  let target = targetPort;
  let holding = false;
  const held = new Set<Socket>();
  const pairs = new Set<[Socket, Socket]>();
  const forward = (client: Socket) => {
    const upstream = connect(target, '127.0.0.1');
    const pair: [Socket, Socket] = [client, upstream];
    pairs.add(pair);
    const end = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
    client.pipe(upstream);
    upstream.pipe(client);
  };
  const server = createServer((client) => {
    if (!holding) return forward(client);
    // Unread until forwarded: what the client sends meanwhile waits in the socket's buffer.
    held.add(client);
    client.on('error', () => held.delete(client)).on('close', () => held.delete(client));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address();
  const cut = () => {
    for (const [client, upstream] of pairs) {
      client.destroy();
      upstream.destroy();
    }
    pairs.clear();
  };
  return {
    port: typeof addr === 'object' && addr ? addr.port : 0,
    cut,
    down() {
      holding = true;
      cut();
    },
    up() {
      holding = false;
      for (const client of held) if (!client.destroyed) forward(client);
      held.clear();
    },
    retarget(port) {
      target = port;
    },
    async close() {
      cut();
      for (const client of held) client.destroy();
      held.clear();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** The cut proxies a test file starts, closed together at its end. */
export class CutProxies {
  private readonly all: CutProxy[] = [];

  async to(target: { port: number }): Promise<CutProxy> {
    const p = await startCutProxy(target.port);
    this.all.push(p);
    return p;
  }

  async closeAll(): Promise<void> {
    await Promise.all(this.all.map((p) => p.close()));
  }
}

export interface AppCreds {
  id: string;
  key: string;
  secret: string;
}

export function sdk(port: number, app: AppCreds): PusherServer {
  return new PusherServer({ appId: app.id, key: app.key, secret: app.secret, host: '127.0.0.1', port: String(port), useTLS: false });
}

/** What the publishers put in each event: who published it and its number in that publisher's sequence. */
export interface Tick {
  publisher: string;
  seq: number;
}

/**
 * Publishes `count` events named `event` on `channel` through one node, one every `intervalMs`,
 * sequence numbers from `from`; resolves once every trigger was accepted. Each publisher is one
 * node's sequence, so the order a subscriber must see is that sequence.
 */
export async function publishSteadily(server: PusherServer, publisher: string, channel: string, event: string, count: number, intervalMs: number, from = 0): Promise<void> {
  for (let seq = from; seq < from + count; seq++) {
    const res = await server.trigger(channel, event, { publisher, seq } satisfies Tick);
    assert.equal(res.status, 200);
    await sleep(intervalMs);
  }
}

/** Publishes numbered events until `stop()` says so (checked before each); answers how many it published. */
export async function publishUntil(server: PusherServer, publisher: string, channel: string, event: string, intervalMs: number, stop: () => boolean): Promise<number> {
  let seq = 0;
  for (; !stop() && seq < 100_000; seq++) {
    const res = await server.trigger(channel, event, { publisher, seq } satisfies Tick);
    assert.equal(res.status, 200);
    await sleep(intervalMs);
  }
  return seq;
}

/** Asserts that each publisher's events arrived exactly once and in the order it published them. */
export function assertEachOnceInOrder(received: readonly Tick[], expected: Record<string, number>): void {
  const byPublisher: Record<string, number[]> = {};
  for (const t of received) (byPublisher[t.publisher] ??= []).push(t.seq);
  const want: Record<string, number[]> = {};
  for (const [publisher, count] of Object.entries(expected)) want[publisher] = Array.from({ length: count }, (_, i) => i);
  assert.deepEqual(byPublisher, want);
}
