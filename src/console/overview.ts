// The console's overview (issue 21): each node samples its connections and messages per second for
// every app it serves, every 5 s, and keeps the last 15 minutes. A watched app's samples go out as
// `stats` console events: the whole 15 minutes when the watch begins on the node, then each new
// sample, so a page charts every node and their total; a page that opens later gets the samples so far
// for itself alone (`greet`). Sampling runs only on nodes with the console on, and reads counters the
// message path keeps anyway (it adds nothing there).
import type { ConsoleTap } from './tap.js';

export const SAMPLE_MS = 5000;
/** 15 minutes of samples. */
export const KEPT_SAMPLES = (15 * 60 * 1000) / SAMPLE_MS;

/** One sample: time (ms), connections, messages received from clients and delivered to them, per second. */
export interface StatsSample {
  t: number;
  connections: number;
  inPerSecond: number;
  outPerSecond: number;
}

export interface StatsSources {
  /** this node's connections per app */
  connections(): ReadonlyMap<string, number>;
  /** the app's traffic counters (totals since the node started) */
  traffic(appId: string): { messagesIn: number; messagesOut: number };
}

interface AppSeries {
  samples: StatsSample[];
  lastIn: number;
  lastOut: number;
  /** the tap watched it at the last sample (a new watch gets the whole history; so does a stream that opens later, from `greet`) */
  watched: boolean;
}

export class TrafficHistory {
  private readonly apps = new Map<string, AppSeries>();
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly sources: StatsSources,
    private readonly tap: ConsoleTap,
  ) {}

  start(): void {
    this.timer = setInterval(() => this.sample(Date.now()), SAMPLE_MS).unref();
  }

  /** One sample of every app with connections on this node; watched apps' go to the console. */
  sample(now: number): void {
    const local = this.sources.connections();
    const apps = new Set([...local.keys(), ...(this.tap.on ? this.tap.watchedApps() : [])]);
    for (const appId of apps) {
      const connections = local.get(appId) ?? 0;
      const t = this.sources.traffic(appId);
      let s = this.apps.get(appId);
      if (!s) this.apps.set(appId, (s = { samples: [], lastIn: t.messagesIn, lastOut: t.messagesOut, watched: false }));
      const sample: StatsSample = {
        t: now,
        connections,
        inPerSecond: ((t.messagesIn - s.lastIn) * 1000) / SAMPLE_MS,
        outPerSecond: ((t.messagesOut - s.lastOut) * 1000) / SAMPLE_MS,
      };
      s.lastIn = t.messagesIn;
      s.lastOut = t.messagesOut;
      s.samples.push(sample);
      if (s.samples.length > KEPT_SAMPLES) s.samples.shift();
      const watched = this.tap.on && this.tap.watches(appId);
      if (watched) this.tap.emit({ type: 'stats', appId, stats: s.watched ? [sample] : s.samples.slice() });
      s.watched = watched;
    }
  }

  /**
   * A console stream (`to`) opened on `appId`: the samples so far, for it alone, once they went out to
   * the streams watching at the last sample; before that, the next sample sends them to every stream.
   */
  greet(appId: string, to: string): void {
    const s = this.apps.get(appId);
    if (s?.watched && this.tap.on && this.tap.watches(appId)) this.tap.emit({ type: 'stats', appId, stats: s.samples.slice(), to });
  }

  close(): void {
    clearInterval(this.timer);
  }
}
