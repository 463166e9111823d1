// Where pending webhook events wait. One queue per (app, endpoint URL): the queue is delivered in
// order by one node at a time, which is what keeps occupied before vacated and added before removed.
import { createHash } from 'node:crypto';

export interface QueuedEvent {
  id: string;
  /** enqueue time, ms since epoch (for the batching window) */
  t: number;
  ev: object;
}

export interface DeadLetter {
  appId: string;
  url: string;
  events: object[];
  firstAttemptAt: number;
  failedAt: number;
  attempts: number;
  error: string;
}

export interface WebhookQueue {
  /** Never throws and never blocks: a backend that cannot write now keeps the events and writes later. */
  append(queue: string, events: { t: number; ev: object }[]): void;
  /** Oldest first. */
  read(queue: string, max: number): Promise<QueuedEvent[]>;
  /** Removes delivered (or dead-lettered) events. */
  ack(queue: string, ids: string[]): Promise<void>;
  /** Whether this node is the one delivering the queue right now (never for a queue outside its set). */
  owns(queue: string): boolean;
  /** fn(queue) when a queue of this node's set may have new events or this node just became its deliverer. */
  onWake(fn: (queue: string) => void): void;
  /** Events waiting, as last known (metrics). */
  depth(): number;
  pushDead(rec: DeadLetter): Promise<void>;
  listDead(appId: string): Promise<DeadLetter[]>;
  /** Removes and returns the app's dead letters (for a replay). */
  takeDead(appId: string): Promise<DeadLetter[]>;
  /** Starts delivering from these queues (see setQueues). */
  start(queues: readonly string[]): Promise<void>;
  /**
   * The queues this node delivers from now on (apps and endpoints change while it runs): added ones
   * are claimed and read from the next round, removed ones released to the other nodes and no longer
   * read. Their events stay queued.
   */
  setQueues(queues: readonly string[]): void;
  /** Stops taking part; a clustered backend hands its queues to the other nodes. */
  close(): Promise<void>;
}

/** The queue name of an app's endpoint: stable across nodes with the same config. */
export function queueName(appId: string, url: string): string {
  return `${appId}|${createHash('sha1').update(url).digest('hex').slice(0, 16)}`;
}

export const DEAD_LETTERS_KEPT_PER_APP = 10_000;

/** Single-node mode: in memory, so a stopped or crashed process loses what it had not delivered. */
export class MemoryWebhookQueue implements WebhookQueue {
  private queues = new Map<string, QueuedEvent[]>();
  /** the queues this node delivers */
  private delivered: ReadonlySet<string> = new Set();
  private dead = new Map<string, DeadLetter[]>();
  private seq = 0;
  private wake: (q: string) => void = () => {};

  append(queue: string, events: { t: number; ev: object }[]): void {
    let q = this.queues.get(queue);
    if (!q) this.queues.set(queue, (q = []));
    for (const e of events) q.push({ id: String(++this.seq), t: e.t, ev: e.ev });
    if (this.delivered.has(queue)) this.wake(queue);
  }

  async read(queue: string, max: number): Promise<QueuedEvent[]> {
    return (this.queues.get(queue) ?? []).slice(0, max);
  }

  async ack(queue: string, ids: string[]): Promise<void> {
    const q = this.queues.get(queue);
    if (!q) return;
    const gone = new Set(ids);
    let n = 0;
    while (n < q.length && gone.has(q[n].id)) n++;
    if (n === ids.length) q.splice(0, n);
    else this.queues.set(queue, q.filter((e) => !gone.has(e.id)));
  }

  owns(queue: string): boolean {
    return this.delivered.has(queue);
  }

  onWake(fn: (q: string) => void): void {
    this.wake = fn;
  }

  depth(): number {
    let n = 0;
    for (const q of this.queues.values()) n += q.length;
    return n;
  }

  async pushDead(rec: DeadLetter): Promise<void> {
    let list = this.dead.get(rec.appId);
    if (!list) this.dead.set(rec.appId, (list = []));
    list.push(rec);
    if (list.length > DEAD_LETTERS_KEPT_PER_APP) list.splice(0, list.length - DEAD_LETTERS_KEPT_PER_APP);
  }

  async listDead(appId: string): Promise<DeadLetter[]> {
    return [...(this.dead.get(appId) ?? [])];
  }

  async takeDead(appId: string): Promise<DeadLetter[]> {
    const list = this.dead.get(appId) ?? [];
    this.dead.delete(appId);
    return list;
  }

  async start(queues: readonly string[]): Promise<void> {
    this.setQueues(queues);
  }

  setQueues(queues: readonly string[]): void {
    const before = this.delivered;
    this.delivered = new Set(queues);
    for (const q of this.delivered) if (!before.has(q) && this.queues.get(q)?.length) this.wake(q);
  }

  async close(): Promise<void> {}
}

