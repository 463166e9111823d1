// A node process started by the primary (workers > 1): it tells the primary when it listens, lends its
// metrics registry to prom-client's cluster aggregation, and answers a scrape of its own /metrics
// with every process's figures, asked of the primary.
import { AggregatorRegistry, type Registry } from 'prom-client';
import { isMessage, type ListeningMessage, type ScrapeReply, type ScrapeRequest } from './messages.js';

/** A primary that never answers (it is gone, or stuck): the scrape fails rather than hang. */
const SCRAPE_TIMEOUT_MS = 6000;

export interface PrimaryLink {
  /** This process's slot, 0..workers-1 (stable across restarts of the slot). */
  slot: number;
  /** Registers this process's registry for aggregation; returns what a scrape answers instead of it alone. */
  shareMetrics(registry: Registry): () => Promise<string>;
  listening(port: number): void;
}

/** Call first thing in a node process: from then on it answers the primary's metric requests (empty until it shares its registry). */
export function primaryLink(slot: number): PrimaryLink {
  AggregatorRegistry.setRegistries([]);
  new AggregatorRegistry();
  const send = (m: ListeningMessage | ScrapeRequest) => process.send?.(m);
  const pending = new Map<number, { resolve: (text: string) => void; reject: (err: Error) => void; timer: NodeJS.Timeout }>();
  let nextId = 0;
  process.on('message', (m: unknown) => {
    if (!isMessage<ScrapeReply>(m, 'ripple:scraped')) return;
    const p = pending.get(m.id);
    if (!p) return;
    pending.delete(m.id);
    clearTimeout(p.timer);
    if (m.text !== undefined) p.resolve(m.text);
    else p.reject(new Error(m.error ?? 'no metrics from the primary'));
  });
  return {
    slot,
    shareMetrics(registry) {
      // prom-client answers the primary's requests for this process's metrics from these registries.
      AggregatorRegistry.setRegistries(registry);
      return () =>
        new Promise<string>((resolve, reject) => {
          const id = nextId++;
          const timer = setTimeout(() => {
            pending.delete(id);
            reject(new Error('the primary did not answer the scrape'));
          }, SCRAPE_TIMEOUT_MS);
          pending.set(id, { resolve, reject, timer });
          send({ type: 'ripple:scrape', id });
        });
    },
    listening(port) {
      send({ type: 'ripple:listening', port });
    },
  };
}
