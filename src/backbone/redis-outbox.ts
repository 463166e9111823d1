// The Redis backbone's outbox: every cross-node operation of this node waits here, in the order it
// was made, until Redis has taken it. While Redis is up the outbox is empty but for the batch in
// flight; while it is down (or just came back: see resubscribeGraceMs) operations stay here, bounded in
// count, bytes and age, and go out in the same order when it returns. A batch that fails stays at
// the head and is written again: a batch Redis did take but whose reply was lost arrives twice, which
// the receivers drop by the sequence number the backbone puts in every message.
//
// On Redis Cluster a publish may be flagged for the fallback (RedisOutboxOptions.fallback): when it
// has waited longer than the fallback's threshold without Redis taking it, and the fallback says it is
// open (a shard is failing, not merely slow), it is handed to the fallback too, once, in queue order,
// and stays queued for its own write. A flagged publish whose slot changed owner lately (a slot
// migration, a failover) goes by the fallback too, whatever the gate says: see MOVED_WINDOW_MS.
import { createHash } from 'node:crypto';
import calculateSlot from 'cluster-key-slot';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { LuaScript, Scripted } from '../redis/clients.js';

/**
 * One Redis operation, written in queue order: a PUBLISH, or a script defined on the connection (the
 * channel history's "number, keep and publish" step for message recovery) with its arguments.
 */
export type OutboxEntry = { kind: 'publish'; channel: string; message: string; fallback?: boolean } | { kind: 'eval'; script: string; args: (string | number)[] };

/** A second way out for flagged publishes whose write is stuck (see RedisOutboxOptions.fallback). */
export interface OutboxFallback {
  /** How long (ms) a flagged publish waits, queued or in flight, before it goes by `send` too. */
  afterMs: number;
  /**
   * Whether the way out is open now (`oldestAt`: when the oldest entry still waiting was queued): asked
   * when flagged publishes are due, which wait (and the outbox asks again every GATE_POLL_MS) while it
   * is not. Due entries go in queue order either way.
   */
  open(oldestAt: number): boolean;
  /** Sends these publishes, in queue order, by the other way; each entry is handed over once. */
  send(entries: readonly OutboxEntry[]): void;
}

export interface OutboxLimits {
  /** Entries waiting at most. */
  events: number;
  /** UTF-8 bytes of the waiting entries' frames at most. */
  bytes: number;
  /** Once the oldest waiting entry is this old (ms), new entries are refused until it has gone out. */
  maxAgeMs: number;
}

export interface RedisOutboxOptions {
  redis: Redis;
  limits: OutboxLimits;
  /**
   * After Redis comes back, every node's subscriber connection reconnects within the client's largest
   * retry delay and then resubscribes; a message published before a node resubscribed never reaches
   * it. So after its connection came back a node holds its outbox this long before writing again.
   */
  resubscribeGraceMs: number;
  /**
   * Redis Cluster: PUBLISH is SPUBLISH (sharded pub/sub), and a batch is not one MULTI (its entries
   * are on different shards): each slot's entries go one after the other, the slots at once
   * (writeSharded), so each channel's stay in order even through a failover. A batch is written
   * again whole when any entry fails: receivers drop the copies (sequence numbers) and the history
   * script its records (senders), as for a batch whose reply was lost.
   */
  cluster?: boolean;
  /**
   * Redis Cluster: the scripts the entries name, sent as EVALSHA in line with the rest. (ioredis's own
   * script commands send EVAL again after a NOSCRIPT, behind entries sent after them: on a primary
   * that does not have the script yet, a new one after a failover, a channel's events would arrive out
   * of order and the receivers drop the late ones.) On NOSCRIPT the scripts are loaded on every
   * primary and the batch is written again.
   */
  scripts?: Record<string, LuaScript & { keys: number }>;
  /**
   * Redis Cluster: publishes flagged `fallback` that Redis has not taken `afterMs` after they were
   * queued are handed to `send` as well (the backbone's classic PUBLISH on the fallback channel) once
   * `open()` says a shard is failing; their own write stays queued, and the receivers drop whichever
   * copy comes second.
   */
  fallback?: OutboxFallback;
  log: Logger;
}

export interface Waiting {
  entry: OutboxEntry;
  bytes: number;
  at: number;
}

/** Entries per write: one MULTI/EXEC, so a batch is taken whole or not at all. */
const BATCH = 256;
const RETRY_MS = 250;
const DOWN_POLL_MS = 50;
/** How often a closed fallback is asked again while entries are due. */
const GATE_POLL_MS = 50;
/**
 * Redis Cluster: for this long (ms) after a slot's owner changed under this node's writes, the
 * flagged publishes of that slot also go by the fallback: the one that showed the change once its
 * shard took it, the later ones just before their shard write (ahead of it). Redis drops
 * every node's shard channels of a slot when the slot is handed over, and a node subscribes them
 * again on the new owner only once it has read the new slot map (100-400 ms measured under load):
 * what the new owner is given meanwhile reaches no other node but by the fallback. The receivers drop
 * whichever copy comes second (sequence numbers).
 */
export const MOVED_WINDOW_MS = 3000;

export class RedisOutbox {
  private waiting: Waiting[] = [];
  /** index of the oldest entry in `waiting` (entries before it went out) */
  private head = 0;
  private bytes = 0;
  private running = false;
  private closed = false;
  /** The last write failed: nothing is known to go out until one succeeds. */
  private failing = false;
  private wasReady: boolean;
  /** When the connection last came back (0: it never went away). */
  private backAt = 0;
  /** Frames refused because the outbox was full or too old (metrics). */
  refused = 0;
  /** entries ever queued, and of them those handed to Redis's socket (in order: a prefix) */
  private queued = 0;
  private sent = 0;
  /** written(): each waits until `sent` reaches its count */
  private writeWaiters: { upTo: number; resolve: () => void }[] = [];
  /** Index in `waiting` up to which the fallback has looked (entries before it were handed over or not flagged). */
  private fellBack = 0;
  private fallbackTimer?: NodeJS.Timeout;
  /**
   * With a fallback: the oldest entry waited afterMs untaken (a shard failing over; ioredis retries a
   * command to a closed node for seconds before it fails): until a write succeeds, written() waits for
   * nothing, as while Redis cannot be reached.
   */
  private stuck = false;
  /** Redis Cluster with a fallback: each slot written to, its owner at the last look and when that changed (ownerOf). */
  private readonly owners = new Map<number, { node: string | undefined; movedAt: number }>();

  constructor(private readonly o: RedisOutboxOptions) {
    this.wasReady = o.redis.status === 'ready';
    // Redis Cluster: a primary that joins the slot map (a promoted replica) gets the scripts too.
    if (o.cluster && o.scripts) o.redis.on('+node', () => void this.loadScripts().catch(() => {}));
    o.redis.on('ready', () => {
      if (o.cluster && o.scripts) this.loadScripts().catch(() => {});
      if (this.wasReady) this.backAt = Date.now();
      this.wasReady = true;
      // At debug: the outage's own log (redis/outage-log.ts) tells the operator that Redis is back.
      if (this.length) this.o.log.debug({ waiting: this.length }, 'Redis is back: cross-node events go out after the resubscribe grace');
    });
  }

  get length(): number {
    return this.waiting.length - this.head;
  }

  get waitingBytes(): number {
    return this.bytes;
  }

  /** True while what is pushed now goes out at once. */
  flowing(now = Date.now()): boolean {
    return this.o.redis.status === 'ready' && !this.failing && now >= this.backAt + this.o.resubscribeGraceMs;
  }

  /** Whether these frames fit (see Backbone.hasRoom); counts them as refused when they do not. */
  hasRoom(frames: readonly string[], now = Date.now()): boolean {
    const n = this.length;
    if (n === 0 && this.flowing(now)) return true;
    const { limits } = this.o;
    let fits = n + frames.length <= limits.events && (n === 0 || now - this.waiting[this.head].at <= limits.maxAgeMs);
    if (fits) {
      let bytes = this.bytes;
      for (const f of frames) bytes += Buffer.byteLength(f);
      fits = bytes <= limits.bytes;
    }
    if (!fits) this.refused += frames.length;
    return fits;
  }

  /**
   * True when what pushNow() is given now goes to Redis's socket before it returns: nothing waits or
   * is in flight, and Redis is up (see flowing).
   */
  idle(now = Date.now()): boolean {
    return !this.running && this.length === 0 && !this.closed && this.flowing(now);
  }

  /**
   * Resolves once everything queued so far has been handed to Redis's socket (a later write, from
   * this node or any other, reaches Redis after it); undefined when it has been already, or while
   * Redis cannot be reached or a write is stuck (see `stuck`): the outage buffer keeps the entries and
   * nobody should wait for them.
   */
  written(): Promise<void> | undefined {
    if (this.sent === this.queued || !this.flowing() || this.stuck) return undefined;
    const upTo = this.queued;
    return new Promise((resolve) => this.writeWaiters.push({ upTo, resolve }));
  }

  /** Tells the written() waiters whose entries went to the socket, or all of them while Redis cannot be reached. */
  private wake(all: boolean): void {
    if (this.writeWaiters.length === 0) return;
    const keep: { upTo: number; resolve: () => void }[] = [];
    for (const w of this.writeWaiters) {
      if (all || w.upTo <= this.sent) w.resolve();
      else keep.push(w);
    }
    this.writeWaiters = keep;
  }

  /** Queues an entry (`bytes`: its frame's UTF-8 size); it goes out after everything queued before it. */
  push(entry: OutboxEntry, bytes: number): void {
    this.waiting.push({ entry, bytes, at: Date.now() });
    this.queued++;
    this.bytes += bytes;
    if (!this.running && !this.closed) void this.run(false);
    this.armFallback();
  }

  /**
   * Queues entries, and when the outbox was idle writes them at once, as one batch: their bytes are in
   * the socket's kernel buffer when this returns (ioredis writes a command to the socket as it is sent
   * on a ready connection). Otherwise they go out in order like push()'s.
   */
  pushNow(entries: readonly Waiting[]): void {
    for (const w of entries) {
      this.waiting.push(w);
      this.bytes += w.bytes;
    }
    this.queued += entries.length;
    if (!this.running && !this.closed) void this.run(true);
    this.armFallback();
  }

  /** Wakes the fallback when the oldest entry it has not looked at comes of age (or `inMs`). */
  private armFallback(inMs?: number): void {
    const f = this.o.fallback;
    if (!f || this.fallbackTimer || this.closed) return;
    const i = Math.max(this.fellBack, this.head);
    if (i >= this.waiting.length) return;
    const due = inMs ?? this.waiting[i].at + f.afterMs - Date.now();
    this.fallbackTimer = setTimeout(() => {
      this.fallbackTimer = undefined;
      this.fallBack();
    }, Math.max(due, 0));
    this.fallbackTimer.unref();
  }

  /**
   * Hands the flagged entries that waited afterMs or longer, still untaken, to the fallback, when it is
   * open; while it is closed they stay due (a shard that is slow but not failing: they wait for it).
   */
  private fallBack(now = Date.now()): void {
    const f = this.o.fallback!;
    if (this.closed) return;
    if (this.length && now - this.waiting[this.head].at >= f.afterMs && !this.stuck) {
      this.stuck = true;
      this.wake(true);
    }
    let i = Math.max(this.fellBack, this.head);
    if (i < this.waiting.length && now - this.waiting[i].at >= f.afterMs && !f.open(this.waiting[this.head].at)) return this.armFallback(GATE_POLL_MS);
    const out: OutboxEntry[] = [];
    for (; i < this.waiting.length && now - this.waiting[i].at >= f.afterMs; i++) {
      const e = this.waiting[i].entry;
      if (e.kind === 'publish' && e.fallback) out.push(e);
    }
    this.fellBack = i;
    if (out.length) f.send(out);
    this.armFallback();
  }

  /**
   * `now`: the first batch is written before the first await, whatever its size (a trigger's entries
   * in one write); else entries pushed in this same turn (a trigger to many channels, a batch) join
   * the first write, one promise job later.
   */
  private async run(now: boolean): Promise<void> {
    this.running = true;
    let warned = false;
    let first = now;
    try {
      if (!now) await Promise.resolve();
      while (this.length && !this.closed) {
        if (this.o.redis.status !== 'ready') {
          this.wake(true);
          await sleep(DOWN_POLL_MS);
          continue;
        }
        const grace = this.backAt + this.o.resubscribeGraceMs - Date.now();
        if (grace > 0) {
          this.wake(true);
          await sleep(grace);
          continue;
        }
        const batch = this.waiting.slice(this.head, first ? this.waiting.length : this.head + BATCH);
        first = false;
        try {
          // the write is on the socket once write() returns its promise (ioredis sends at once when ready)
          const writing = this.write(batch.map((w) => w.entry));
          this.sent = Math.max(this.sent, this.queued - this.length + batch.length);
          this.wake(false);
          await writing;
        } catch (err) {
          this.wake(true);
          this.failing = true;
          if (!warned) this.o.log.debug({ err, waiting: this.length }, 'cross-node events not written to Redis: kept in order, retrying');
          warned = true;
          await sleep(RETRY_MS);
          continue;
        }
        this.failing = false;
        this.stuck = false;
        this.head += batch.length;
        for (const w of batch) this.bytes -= w.bytes;
        if (this.head > 1024 && this.head * 2 > this.waiting.length) {
          this.fellBack = Math.max(0, this.fellBack - this.head);
          this.waiting = this.waiting.slice(this.head);
          this.head = 0;
        }
      }
    } finally {
      this.running = false;
    }
  }

  private shas = new Map<string, string>();

  private sha(script: string): { sha: string; keys: number } {
    const s = this.o.scripts?.[script];
    if (!s) throw new Error(`outbox: unknown script ${script}`);
    let sha = this.shas.get(script);
    if (!sha) this.shas.set(script, (sha = createHash('sha1').update(s.lua).digest('hex')));
    return { sha, keys: s.keys };
  }

  /**
   * Redis Cluster: the scripts on every primary, so the first event of a channel does not wait for a
   * NOSCRIPT round (done when the client is ready, which also opens a connection to every primary).
   */
  private async loadScripts(): Promise<void> {
    const primaries = (this.o.redis as unknown as { nodes(role: 'master'): Redis[] }).nodes('master');
    await Promise.all(primaries.flatMap((n) => Object.values(this.o.scripts ?? {}).map((s) => n.script('LOAD', s.lua))));
  }

  /**
   * Redis Cluster: each slot's entries one after the other, the slots at once (see
   * RedisOutboxOptions.cluster). Within a slot an entry goes out only after the one before it was
   * taken, and the first that fails stops its slot: sent all at once, ioredis retries each failed
   * command on its own during a failover, so a channel's later event could be recorded before an
   * earlier one, which the history script then drops as a copy when the batch is written again.
   */
  private async writeSharded(entries: OutboxEntry[], again = true): Promise<void> {
    const r = this.o.redis;
    const bySlot = new Map<string, OutboxEntry[]>();
    for (const e of entries) {
      const tag = hashTagOf(e.kind === 'publish' ? e.channel : String(e.args[0]));
      const group = bySlot.get(tag);
      if (group) group.push(e);
      else bySlot.set(tag, [e]);
    }
    const results = await Promise.allSettled(
      [...bySlot].map(async ([tag, group]) => {
        const owner = this.o.fallback ? this.ownerOf(calculateSlot(tag)) : undefined;
        for (const e of group) {
          if (e.kind === 'publish') {
            // Within a move's window the copy goes first, so that it is ahead of the next one's shard copy.
            const early = e.fallback && owner?.moved();
            if (early) this.o.fallback!.send([e]);
            await r.spublish(e.channel, e.message);
            if (e.fallback && !early && owner?.moved()) this.o.fallback!.send([e]);
          } else {
            const { sha, keys } = this.sha(e.script);
            await r.evalsha(sha, keys, ...e.args);
          }
        }
      }),
    );
    const failed = results.find((x): x is PromiseRejectedResult => x.status === 'rejected');
    if (!failed) return;
    if (again && /NOSCRIPT/.test(String(failed.reason?.message))) {
      // A primary without the script (a replica just promoted): load it, write the batch again now.
      await this.loadScripts();
      return this.writeSharded(entries, false);
    }
    throw failed.reason;
  }

  /**
   * A slot's owner as ioredis's slot map has it, looked at around each write: `moved()` is true when
   * it changed within the last MOVED_WINDOW_MS (seen as a change since the slot's previous look: the
   * slot map was read again, or ioredis followed a MOVED reply and updated it).
   */
  private ownerOf(slot: number): { moved(): boolean } {
    const slots = (this.o.redis as unknown as { slots: (string[] | undefined)[] }).slots;
    let seen = this.owners.get(slot);
    if (!seen) this.owners.set(slot, (seen = { node: slots[slot]?.[0], movedAt: -Infinity }));
    const known = seen;
    return {
      moved: () => {
        const node = slots[slot]?.[0];
        if (node !== known.node) {
          if (known.node !== undefined) known.movedAt = Date.now();
          known.node = node;
        }
        return Date.now() - known.movedAt < MOVED_WINDOW_MS;
      },
    };
  }

  private async write(entries: OutboxEntry[]): Promise<void> {
    if (this.o.cluster) return this.writeSharded(entries);
    if (entries.length === 1) {
      const e = entries[0];
      await (e.kind === 'publish' ? this.o.redis.publish(e.channel, e.message) : (this.o.redis as Scripted)[e.script](...e.args));
      return;
    }
    const tx = this.o.redis.multi();
    for (const e of entries) {
      if (e.kind === 'publish') tx.publish(e.channel, e.message);
      else (tx as unknown as Scripted)[e.script](...e.args);
    }
    const res = await tx.exec();
    if (!res) throw new Error('transaction aborted');
    for (const [err] of res) if (err) throw err;
  }

  /** Waits up to timeoutMs for what is queued to go out, then stops; what is left is lost (and logged). */
  async close(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.length && Date.now() < deadline) await sleep(20);
    this.closed = true;
    clearTimeout(this.fallbackTimer);
    this.wake(true);
    if (this.length) this.o.log.error({ lost: this.length }, 'cross-node events never reached Redis before shutdown');
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** What Redis Cluster hashes of a name: the part inside its first non-empty {...}, or the whole name. */
function hashTagOf(name: string): string {
  const open = name.indexOf('{');
  if (open < 0) return name;
  const close = name.indexOf('}', open + 1);
  return close > open + 1 ? name.slice(open + 1, close) : name;
}
