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

/** A count this old is reused while far from the limit (connections in between are added to it). */
const SAMPLE_MS = 100;

export class OpenFiles {
  private sampled = 0;
  private sampledAt = 0;
  /** connections let in since the last count */
  private since = 0;

  constructor(
    readonly limit: number,
    readonly reserve = reserveFor(limit),
  ) {}

  /** Whether one more connection leaves the reserve free; counted as taken when true. */
  admit(now = Date.now()): boolean {
    const ceiling = this.limit - this.reserve;
    // Near the ceiling every connection counts again; far from it a recent count is enough.
    if (now - this.sampledAt >= SAMPLE_MS || this.sampled + this.since >= ceiling - this.reserve) {
      this.sampled = openFileCount();
      this.sampledAt = now;
      this.since = 0;
    }
    if (this.sampled + this.since >= ceiling) return false;
    this.since++;
    return true;
  }
}
