// The cluster relay (issue 21): a node with a console open on an app tells every node "app X is
// watched" with a node command (backbone/command-router.ts), renewed while the console stays open and
// forgotten by itself when it is not; every node then publishes that app's events to the app's relay
// channel (Redis pub/sub: redis-relay.ts; one node: memory), which the watching nodes listen to and
// hand to their streams. Nothing crosses the network for an app nobody watches.
//
// A node says `watching` to every stream of the app when its watch begins; a stream that opens on an
// app watched already would never hear it, so each stream, once its node listens, sends the watch
// command with its own id, and every node answers it alone: its `watching` row, and its overview samples
// so far (overview.ts), as records addressed to that stream (`ConsoleEvent.to`), which the other
// streams do not get.
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { NodeCommand } from '../backbone/backbone.js';
import type { ConsoleEvent } from './events.js';
import type { ConsoleSink, ConsoleTap } from './tap.js';

/** How long one watch holds, and how often an open console renews it. */
export const WATCH_TTL_MS = 15_000;
export const WATCH_RENEW_MS = 5_000;

/** Carries an app's events from every node to the nodes that listen (memory: this process). */
export interface RelayTransport {
  publish(appId: string, json: string): void;
  /** Resolves once events published from now on reach `deliver`. */
  listen(appId: string, deliver: (json: string) => void): Promise<void>;
  unlisten(appId: string): void;
  close(): Promise<void>;
}

/** One open console stream's receiver. */
export type Viewer = (ev: ConsoleEvent, json: string) => void;

/** What else this node sends a stream that has just opened (`to`, its id) on an app it streams. */
export type Greet = (appId: string, to: string) => void;

interface Stream {
  viewer: Viewer;
  /**
   * The nodes whose `watching` reached it as a record for every stream: such a node's `watching` for
   * it alone is then a repeat (its watch began while this stream was already listening).
   */
  announced: Set<string>;
}

interface Watched {
  /** stream id → stream */
  streams: Map<string, Stream>;
  renew: NodeJS.Timeout;
  listening: Promise<void>;
}

export class ConsoleRelay implements ConsoleSink {
  private readonly watched = new Map<string, Watched>();

  constructor(
    private readonly tap: ConsoleTap,
    private readonly broadcast: (cmd: NodeCommand) => void,
    private readonly transport: RelayTransport,
    private readonly log: Logger,
    private readonly greet: Greet = () => {},
  ) {
    tap.connect(this);
  }

  /** The `console-watch` node command, from any node (this one included). */
  command(cmd: Extract<NodeCommand, { type: 'console-watch' }>): void {
    const ttl = Math.min(Math.max(Number(cmd.ttlMs) || 0, 0), WATCH_TTL_MS * 2);
    if (typeof cmd.appId !== 'string' || ttl === 0) return;
    const began = this.tap.watch(cmd.appId, ttl);
    // (The operator's unknown-key watch rides along with an app's: it is not announced.)
    if (cmd.appId === '') return;
    const to = typeof cmd.viewer === 'string' ? cmd.viewer : undefined;
    // A watch that begins here is news to every stream of the app; a stream that opens on an app
    // watched here already is told alone (the others were told when the watch began, or when they opened).
    if (began) this.tap.emit({ type: 'watching', appId: cmd.appId });
    else if (to !== undefined) this.tap.emit({ type: 'watching', appId: cmd.appId, to });
    if (to !== undefined) this.greet(cmd.appId, to);
  }

  publish(ev: ConsoleEvent): void {
    this.transport.publish(ev.appId, JSON.stringify(ev));
  }

  /**
   * Starts handing `appId`'s events, from every node, to `viewer`; resolves once the relay listens
   * (the nodes start publishing when the watch reaches them, and each then says `watching` to this
   * stream, whether its watch began then or earlier). The returned function stops it.
   */
  async watch(appId: string, viewer: Viewer): Promise<() => void> {
    let w = this.watched.get(appId);
    if (!w) {
      const listening = this.transport.listen(appId, (json) => this.deliver(appId, json));
      const renew = setInterval(() => this.broadcast({ type: 'console-watch', appId, ttlMs: WATCH_TTL_MS }), WATCH_RENEW_MS).unref();
      this.watched.set(appId, (w = { streams: new Map(), renew, listening }));
    }
    // Unique across the cluster: the nodes answer this stream by it.
    const id = randomUUID();
    w.streams.set(id, { viewer, announced: new Set() });
    await w.listening;
    // Told once listening, so what the nodes answer (and their first events) is not published into the void.
    if (this.watched.get(appId)?.streams.has(id)) this.broadcast({ type: 'console-watch', appId, ttlMs: WATCH_TTL_MS, viewer: id });
    return () => this.unwatch(appId, id);
  }

  private unwatch(appId: string, id: string): void {
    const w = this.watched.get(appId);
    if (!w?.streams.delete(id) || w.streams.size > 0) return;
    clearInterval(w.renew);
    this.watched.delete(appId);
    this.transport.unlisten(appId);
  }

  private deliver(appId: string, json: string): void {
    const streams = this.watched.get(appId)?.streams;
    if (!streams) return;
    let ev: ConsoleEvent;
    try {
      ev = JSON.parse(json) as ConsoleEvent;
    } catch (err) {
      return void this.log.debug({ err }, 'bad console event ignored');
    }
    if (ev.to === undefined) {
      for (const s of streams.values()) {
        if (ev.type === 'watching') s.announced.add(ev.node);
        s.viewer(ev, json);
      }
      return;
    }
    // For one stream (another node's, when not here).
    const s = streams.get(ev.to);
    if (!s || (ev.type === 'watching' && s.announced.has(ev.node))) return;
    const shown: ConsoleEvent = { ...ev, to: undefined };
    s.viewer(shown, JSON.stringify(shown));
  }

  async close(): Promise<void> {
    for (const w of this.watched.values()) clearInterval(w.renew);
    this.watched.clear();
    this.tap.close();
    await this.transport.close();
  }
}

/** One node: the events go straight to this process's listeners. */
export class MemoryRelayTransport implements RelayTransport {
  private readonly listeners = new Map<string, (json: string) => void>();

  publish(appId: string, json: string): void {
    this.listeners.get(appId)?.(json);
  }

  async listen(appId: string, deliver: (json: string) => void): Promise<void> {
    this.listeners.set(appId, deliver);
  }

  unlisten(appId: string): void {
    this.listeners.delete(appId);
  }

  async close(): Promise<void> {
    this.listeners.clear();
  }
}
