// The tap (issue 21): where the hooks on the message and connection paths hand the console what
// happened. It costs one boolean check while no console watches any app on the cluster: every hook is
// written `if (tap.on && tap.watches(appId)) tap.emit({...})`, so nothing is built unless the app is
// watched. Which apps are watched comes from the relay (relay.ts), which hears every watching node's
// renewals; a watch not renewed runs out by itself.
import type { ConsoleEvent, ConsoleEventInput } from './events.js';

/** Where the tap's events go: the relay, which sends them to the nodes that watch. */
export interface ConsoleSink {
  publish(ev: ConsoleEvent): void;
}

/** Another app's credentials, for the doctor's "signed with another app's secret" (never shown). */
export interface PeerApp {
  id: string;
  key: string;
  secret: string;
}

/** How often expired watches are dropped (they also stop counting the moment they expire). */
const SWEEP_MS = 1000;

export class ConsoleTap {
  /** True while at least one app (or the operator's "unknown keys") is watched: the hot paths' one check. */
  on = false;
  /** appId ('' for unknown keys) → watched until (ms, this node's clock) */
  private readonly watched = new Map<string, number>();
  private sweep?: NodeJS.Timeout;
  private sink?: ConsoleSink;

  constructor(
    readonly nodeId: string,
    /** every app of the store, for the doctor (its secrets never leave the node) */
    readonly peers: () => readonly PeerApp[] = () => [],
  ) {}

  /** Once, at start: where events go. */
  connect(sink: ConsoleSink): void {
    this.sink = sink;
  }

  /** Whether a console watches `appId`; ask only after `on`. */
  watches(appId: string): boolean {
    const until = this.watched.get(appId);
    return until !== undefined && until > Date.now();
  }

  /** The apps watched now (the overview samples them even without connections here). */
  watchedApps(): string[] {
    const now = Date.now();
    return [...this.watched].filter(([appId, until]) => appId !== '' && until > now).map(([appId]) => appId);
  }

  emit(ev: ConsoleEventInput): void {
    try {
      this.sink?.publish({ ...ev, time: Date.now(), node: this.nodeId });
    } catch {
      // The console must never disturb what it watches.
    }
  }

  /** A console somewhere watches `appId` for `ttlMs` more (renewed by the watching node); true when it was not watched. */
  watch(appId: string, ttlMs: number): boolean {
    const now = Date.now();
    const until = now + ttlMs;
    const before = this.watched.get(appId) ?? 0;
    if (before < until) this.watched.set(appId, until);
    this.on = true;
    this.sweep ??= setInterval(() => this.expire(), SWEEP_MS).unref();
    return before <= now;
  }

  private expire(): void {
    const now = Date.now();
    for (const [appId, until] of this.watched) if (until <= now) this.watched.delete(appId);
    if (this.watched.size > 0) return;
    this.on = false;
    clearInterval(this.sweep);
    this.sweep = undefined;
  }

  close(): void {
    clearInterval(this.sweep);
    this.sweep = undefined;
    this.watched.clear();
    this.on = false;
  }
}
