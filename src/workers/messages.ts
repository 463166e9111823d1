// What the primary and its node processes tell each other over the cluster IPC channel.

/** A node process listens on the port (its first start, or a restart). */
export interface ListeningMessage {
  type: 'ripple:listening';
  port: number;
}

/** A node process asks for every process's metrics (a scrape of /metrics on the main port). */
export interface ScrapeRequest {
  type: 'ripple:scrape';
  id: number;
}

/** The primary's answer: the aggregated Prometheus text, or why there is none. */
export interface ScrapeReply {
  type: 'ripple:scraped';
  id: number;
  text?: string;
  error?: string;
}

export type WorkerMessage = ListeningMessage | ScrapeRequest;

export function isMessage<T extends { type: string }>(m: unknown, type: T['type']): m is T {
  return !!m && typeof m === 'object' && (m as { type?: unknown }).type === type;
}

/** The environment variable a node process learns its slot (0..N-1) from. */
export const SLOT_ENV = 'RIPPLE_WORKER_SLOT';
