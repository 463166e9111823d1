// One process per core (workers > 1): this primary process serves no client. It starts N node
// processes (node:cluster) that listen on the same port (SO_REUSEPORT, cluster mode), starts one again
// when it dies, passes a stop signal on to all of them and waits for their drains, and answers
// /metrics with every process's figures: prom-client's cluster registry asks each process for its
// own and adds them up (counters and gauges summed per label set), on the metrics port when one is
// set, and for a scrape of any process's /metrics on the main port.
import cluster, { type Worker } from 'node:cluster';
import { createServer, type Server } from 'node:http';
import type { Logger } from 'pino';
import { AggregatorRegistry } from 'prom-client';
import { SLOT_ENV, isMessage, type ListeningMessage, type ScrapeReply, type ScrapeRequest } from './messages.js';

export interface PrimaryOptions {
  workers: number;
  /** Each node's drain deadline; the primary waits this and a second more before it kills what is left. */
  shutdownTimeoutMs: number;
  /** The metrics port, served here with every process's figures (the nodes then serve none). */
  metrics?: { host: string; port: number; pathPrefix: string };
  log: Logger;
  /** Once every node process listens, the first time. */
  onListening(port: number): void;
}

export class PrimaryStartError extends Error {
  override name = 'PrimaryStartError';
}

/** A node process that died is started again after this, doubling while it keeps failing to listen. */
const RESTART_MS = 1000;
const RESTART_MAX_MS = 30_000;

/** Runs until the nodes have stopped; resolves with the exit code for the process. */
export async function runPrimary(o: PrimaryOptions): Promise<number> {
  const aggregator = new AggregatorRegistry();
  const scrape = () => aggregator.clusterMetrics();
  const server = o.metrics ? await serveMetrics(o.metrics, scrape, aggregator.contentType, o.log) : undefined;

  const slots: { worker?: Worker; listened: boolean; restartMs: number }[] = Array.from({ length: o.workers }, () => ({ listened: false, restartMs: RESTART_MS }));
  let announced = false;
  let stopping = false;
  let failed = false;
  let finish: (code: number) => void = () => {};
  const finished = new Promise<number>((resolve) => (finish = resolve));

  const fork = (slot: number) => {
    const worker = cluster.fork({ [SLOT_ENV]: String(slot) });
    slots[slot].worker = worker;
    worker.on('message', (m: unknown) => {
      if (isMessage<ListeningMessage>(m, 'ripple:listening')) {
        slots[slot].listened = true;
        slots[slot].restartMs = RESTART_MS;
        if (!announced && slots.every((s) => s.listened)) {
          announced = true;
          o.log.info({ workers: o.workers, port: m.port }, 'every node process listens');
          o.onListening(m.port);
        }
      } else if (isMessage<ScrapeRequest>(m, 'ripple:scrape')) {
        const reply = (r: Omit<ScrapeReply, 'type' | 'id'>) => {
          if (worker.isConnected()) worker.send({ type: 'ripple:scraped', id: m.id, ...r } satisfies ScrapeReply);
        };
        scrape().then(
          (text) => reply({ text }),
          (err: Error) => reply({ error: err.message }),
        );
      }
    });
    worker.on('exit', (code, signal) => {
      slots[slot].worker = undefined;
      // A crash while serving was answered with a restart; what counts is how the start and the stop went.
      if (code !== 0 && (stopping || !announced)) failed = true;
      if (stopping) {
        if (slots.every((s) => !s.worker)) finish(failed ? 1 : 0);
        return;
      }
      if (!announced) {
        // A node that cannot start (its port is taken, say) fails the whole start, as a single node would.
        o.log.error({ slot, code, signal }, 'a node process did not start: stopping');
        stop('start failure');
        return;
      }
      const wait = slots[slot].restartMs;
      slots[slot].restartMs = Math.min(wait * 2, RESTART_MAX_MS);
      o.log.error({ slot, code, signal, restartInMs: wait }, 'a node process died: starting it again');
      setTimeout(() => {
        if (!stopping) fork(slot);
      }, wait);
    });
  };

  const stop = (why: string, signal: NodeJS.Signals = 'SIGTERM') => {
    if (stopping) return;
    stopping = true;
    o.log.info({ signal: why }, 'shutting down');
    const live = slots.map((s) => s.worker).filter((w): w is Worker => !!w);
    if (!live.length) finish(failed ? 1 : 0);
    for (const w of live) w.process.kill(signal);
    const deadline = setTimeout(() => {
      o.log.error('node processes did not stop within the deadline: killing them');
      for (const s of slots) s.worker?.process.kill('SIGKILL');
      finish(1);
    }, o.shutdownTimeoutMs + 1000);
    deadline.unref();
  };
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.on(signal, () => stop(signal, signal));

  for (let slot = 0; slot < o.workers; slot++) fork(slot);
  const code = await finished;
  server?.close();
  if (failed && !announced) throw new PrimaryStartError('a node process did not start (see its error above)');
  o.log.info('stopped');
  return code;
}

function serveMetrics(m: NonNullable<PrimaryOptions['metrics']>, scrape: () => Promise<string>, contentType: string, log: Logger): Promise<Server> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '').split('?', 1)[0];
    if (req.method === 'GET' && path === `${m.pathPrefix}/metrics`) {
      scrape().then(
        (text) => res.writeHead(200, { 'content-type': contentType }).end(text),
        (err: unknown) => {
          log.error({ err }, 'metrics scrape failed');
          res.writeHead(500).end();
        },
      );
    } else if (req.method === 'GET' && path === `${m.pathPrefix}/health`) {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
    } else {
      res.writeHead(404).end();
    }
  });
  return new Promise((resolve, reject) => {
    server.once('error', () =>
      reject(new PrimaryStartError(`cannot listen on ${m.host}:${m.port} for metrics: the port is in use, or the address is not available on this machine`)),
    );
    // exclusive: a second primary on this port fails to start instead of sharing it
    server.listen({ host: m.host, port: m.port, exclusive: true }, () => resolve(server));
  });
}
