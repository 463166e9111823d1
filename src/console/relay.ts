// The cluster relay (issue 21): a node with a console open on an app tells every node "app X is
// watched" with a node command (backbone/command-router.ts), renewed while the console stays open and
// forgotten by itself when it is not; every node then publishes that app's events to the app's relay
// channel (Redis pub/sub: redis-relay.ts; one node: memory), which the watching nodes listen to and
// hand to their streams. Nothing crosses the network for an app nobody watches.
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

interface Watched {
  viewers: Set<Viewer>;
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
  ) {
    tap.connect(this);
  }

  /** The `console-watch` node command, from any node (this one included). */
  command(cmd: Extract<NodeCommand, { type: 'console-watch' }>): void {
    const ttl = Math.min(Math.max(Number(cmd.ttlMs) || 0, 0), WATCH_TTL_MS * 2);
    if (typeof cmd.appId !== 'string' || ttl === 0) return;
    // (The operator's unknown-key watch rides along with an app's: it is not announced.)
    if (this.tap.watch(cmd.appId, ttl) && cmd.appId !== '') this.tap.emit({ type: 'watching', appId: cmd.appId });
  }

  publish(ev: ConsoleEvent): void {
    this.transport.publish(ev.appId, JSON.stringify(ev));
  }

  /**
   * Starts handing `appId`'s events, from every node, to `viewer`; resolves once the relay listens
   * (the other nodes start publishing when the watch reaches them: each says so with a `watching`
   * event). The returned function stops it.
   */
  async watch(appId: string, viewer: Viewer): Promise<() => void> {
    let w = this.watched.get(appId);
    if (!w) {
      const listening = this.transport.listen(appId, (json) => this.deliver(appId, json));
      const renew = setInterval(() => this.broadcast({ type: 'console-watch', appId, ttlMs: WATCH_TTL_MS }), WATCH_RENEW_MS).unref();
      this.watched.set(appId, (w = { viewers: new Set(), renew, listening }));
      // Told once listening, so the first events of the other nodes are not published into the void.
      void listening.then(() => this.broadcast({ type: 'console-watch', appId, ttlMs: WATCH_TTL_MS }));
    }
    w.viewers.add(viewer);
    await w.listening;
    return () => this.unwatch(appId, viewer);
  }

  private unwatch(appId: string, viewer: Viewer): void {
    const w = this.watched.get(appId);
    if (!w?.viewers.delete(viewer) || w.viewers.size > 0) return;
    clearInterval(w.renew);
    this.watched.delete(appId);
    this.transport.unlisten(appId);
  }

  private deliver(appId: string, json: string): void {
    const viewers = this.watched.get(appId)?.viewers;
    if (!viewers) return;
    let ev: ConsoleEvent;
    try {
      ev = JSON.parse(json) as ConsoleEvent;
    } catch (err) {
      return void this.log.debug({ err }, 'bad console event ignored');
    }
    for (const v of viewers) v(ev, json);
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
