// A loopback TCP proxy between one node and its redis-server, for the faults of the network between
// them. It tells the node's subscriber connection (ioredis names it `ripple-<node id>-sub` first thing
// on connect) from its other connections, so a test can slow down what Redis sends to that one only,
// or cut some or all of its connections and hold their reconnects until it restores them; Redis keeps
// its data.
import { connect, createServer, type Socket } from 'node:net';

/** The node's subscriber connection, its others (commands), or all of them. */
export type RedisLink = 'subscriber' | 'commands' | 'all';

export interface RedisProxy {
  /** redis://127.0.0.1:<port>, for the node's REDIS_URL */
  url: string;
  /** From now on, what Redis sends to the subscriber connection reaches the node `ms` later (in order). */
  delaySubscriber(ms: number): void;
  /** Closes the connections `which` names, both ways, and holds new ones of that kind until restore(). */
  cut(which: RedisLink): void;
  /** Forwards the held connections and every new one. */
  restore(): void;
  close(): Promise<void>;
}

/** Bytes a connection sends before its name is known at most (ioredis names it with its first command). */
const NAME_WINDOW = 4096;

interface Link {
  client: Socket;
  upstream?: Socket;
  subscriber: boolean;
  /** client bytes read before the upstream connection exists */
  early: Buffer[];
  /** when the last delayed chunk is due, so chunks never overtake one another */
  dueAt: number;
}

const names = (which: RedisLink, l: Link) => which === 'all' || (which === 'subscriber') === l.subscriber;

export async function startRedisProxy(redisPort: number): Promise<RedisProxy> {
  let delayMs = 0;
  let holding: RedisLink | undefined;
  const links = new Set<Link>();
  const held = new Set<Link>();

  const drop = (l: Link) => {
    links.delete(l);
    held.delete(l);
    l.client.destroy();
    l.upstream?.destroy();
  };

  const forward = (l: Link) => {
    const upstream = connect(redisPort, '127.0.0.1');
    l.upstream = upstream;
    upstream.on('error', () => drop(l)).on('close', () => drop(l));
    for (const chunk of l.early) upstream.write(chunk);
    l.early = [];
    upstream.on('data', (chunk: Buffer) => {
      if (!l.subscriber || delayMs === 0) {
        if (l.dueAt <= Date.now()) return void l.client.write(chunk);
      }
      l.dueAt = Math.max(Date.now() + (l.subscriber ? delayMs : 0), l.dueAt);
      setTimeout(() => l.client.destroyed || l.client.write(chunk), l.dueAt - Date.now());
    });
  };

  const server = createServer((client) => {
    const l: Link = { client, subscriber: false, early: [], dueAt: 0 };
    links.add(l);
    let named = false;
    let seen = '';
    client.on('error', () => drop(l)).on('close', () => drop(l));
    client.on('data', (chunk: Buffer) => {
      if (named) {
        if (l.upstream) l.upstream.write(chunk);
        else l.early.push(chunk);
        return;
      }
      l.early.push(chunk);
      seen += chunk.toString('latin1');
      const name = /setname\r\n\$\d+\r\n([^\r]*)\r\n/i.exec(seen);
      if (!name && seen.length < NAME_WINDOW) return;
      named = true;
      l.subscriber = !!name && name[1].endsWith('-sub');
      if (holding && names(holding, l)) held.add(l);
      else forward(l);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  return {
    url: `redis://127.0.0.1:${port}`,
    delaySubscriber(ms) {
      delayMs = ms;
    },
    cut(which) {
      holding = which;
      for (const l of links) if (names(which, l)) drop(l);
    },
    restore() {
      holding = undefined;
      for (const l of held) if (!l.client.destroyed) forward(l);
      held.clear();
    },
    async close() {
      for (const l of links) drop(l);
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
