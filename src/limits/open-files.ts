// File descriptors: every connection holds one, and at the process limit accept() fails. uWS then
// finds the listening socket readable again at once and spins at full CPU while letting nobody in.
// So a node never lets connections take the last descriptors: a reserve stays free for accept itself
// (a refused client must still be accepted to be told why), Redis reconnects, webhook requests and
// REST clients, and a new WebSocket is refused with 4100 "over capacity" while the reserve is reached.
//
// The limit: Node raises the soft limit to the hard one when it starts (PlatformInit in src/node.cc,
// unless an embedder opts out), so the soft limit read here is already the highest the process may
// use; only the hard limit (ulimit -Hn, LimitNOFILE=) raises it further.
import { readdirSync, readFileSync, statSync } from 'node:fs';

interface OpenFileLimit {
  soft: number;
  hard: number;
}

/** The process's open-file limits from /proc (Linux); undefined where there is no /proc. */
export function openFileLimit(): OpenFileLimit | undefined {
  let text: string;
  try {
    text = readFileSync('/proc/self/limits', 'utf8');
  } catch {
    return undefined;
  }
  const m = /^Max open files\s+(\S+)\s+(\S+)/m.exec(text);
  if (!m) return undefined;
  const num = (v: string) => (v === 'unlimited' ? Number.MAX_SAFE_INTEGER : Number(v));
  return { soft: num(m[1]), hard: num(m[2]) };
}

/** Descriptors open now. Linux 6.2+ reports the count as the size of /proc/self/fd (one cheap stat). */
function openFileCount(): number {
  const size = statSync('/proc/self/fd').size;
  // Older kernels report 0: count the entries (the directory's own descriptor is one of them).
  return size > 0 ? size : readdirSync('/proc/self/fd').length - 1;
}

/** Descriptors kept free: a sixteenth of the limit, at least 8 and at most 1024. */
function reserveFor(limit: number): number {
  return Math.min(1024, Math.max(8, Math.floor(limit / 16)));
}

/** A count this old is reused (connections let in since are added to it). */
const SAMPLE_MS = 100;
/** Descriptors held by something other than connections: the least seen over this long (see below). */
const BASELINE_WINDOW_MS = 1000;

/**
 * Lets a connection in while the connections open, plus the descriptors held by everything else
 * (listening sockets, Redis, logs, webhook and REST sockets: the baseline), stay below the limit less
 * the reserve.
 *
 * A connection burst must not count against itself: by the time the first upgrade of a burst is
 * decided, the kernel has handed uWS every socket of it, so the descriptor count already holds them
 * all. Each of those sockets holds its descriptor whether it is let in or refused, so letting it in
 * takes nothing more; what must stay free is the room for the next accept once the burst has been
 * answered. So the count that matters is the connections (exact, from the sessions) plus the
 * baseline, which is measured as descriptors minus connections at each sample and taken as the least
 * seen over the last second (and the last sample before it): a burst's pending sockets inflate the
 * samples taken during the burst, never a calm one, while a baseline that really grew (many REST
 * clients, say) is seen within a second.
 */
export class OpenFiles {
  private sampledAt = -Infinity;
  /** connections open at the last sample */
  private connectionsAtSample = 0;
  /** connections let in since the last sample (they may not be open yet: a quota check awaits) */
  private since = 0;
  /** descriptors not held by connections, at each recent sample (oldest first) */
  private baselines: { at: number; fds: number }[] = [];

  constructor(
    readonly limit: number,
    /** Connections open on this node now. */
    private readonly connections: () => number,
    readonly reserve = reserveFor(limit),
  ) {
    this.calibrate();
  }

  /** Counts now, as the calm count a first burst is measured against: call once the port listens. */
  calibrate(now = Date.now()): void {
    this.baselines = [];
    this.sample(now);
  }

  /** Whether one more connection leaves the reserve free; counted as taken when true. */
  admit(now = Date.now()): boolean {
    if (now - this.sampledAt >= SAMPLE_MS) this.sample(now);
    const open = Math.max(this.connections(), this.connectionsAtSample + this.since);
    if (open + this.baseline() >= this.limit - this.reserve) return false;
    this.since++;
    return true;
  }

  private sample(now: number): void {
    const open = this.connections();
    this.sampledAt = now;
    this.connectionsAtSample = open;
    this.since = 0;
    this.baselines.push({ at: now, fds: Math.max(0, openFileCount() - open) });
    // keep the window, and the newest sample before it (the last calm one after a quiet spell)
    while (this.baselines.length > 1 && this.baselines[1].at <= now - BASELINE_WINDOW_MS) this.baselines.shift();
  }

  private baseline(): number {
    let least = Infinity;
    for (const b of this.baselines) least = Math.min(least, b.fds);
    return least;
  }
}
