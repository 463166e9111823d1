// Notices a change to the app table (a row inserted, updated or deleted by anyone: the management
// API, a community UI, a migration) without triggers or columns of ours in the table: every interval
// one aggregate query reads the table's fingerprint, and only when it differs from the last one are
// the rows read again. The same poll tells when the database went away and came back.
import type { AppSource } from './source.js';
import { SOURCE_DEADLINE_MS, withDeadline } from './cached-store.js';

/** What the detector drives: the caching store. */
export interface Refreshable {
  readonly refreshDue: boolean;
  refresh(): Promise<void>;
  answered(): void;
  failed(err: unknown): void;
}

export class ChangeDetector {
  private last: string | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private running: Promise<void> | undefined;

  constructor(
    private readonly source: AppSource,
    private readonly store: Refreshable,
    private readonly intervalMs: number,
  ) {}

  /** Checks now, then every interval (one check at a time), until stop(). */
  start(): Promise<void> {
    return this.check();
  }

  /** One check: the fingerprint, and the rows when it changed. Never rejects. */
  check(): Promise<void> {
    this.running ??= this.poll().finally(() => {
      this.running = undefined;
      if (!this.stopped) this.timer = setTimeout(() => void this.check(), this.intervalMs);
    });
    return this.running;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
  }

  private async poll(): Promise<void> {
    clearTimeout(this.timer);
    try {
      // The side table for rotations, made once the database is reachable.
      await withDeadline(this.source.prepare(), SOURCE_DEADLINE_MS, 'preparing the app store');
      const fingerprint = await withDeadline(this.source.fingerprint(), SOURCE_DEADLINE_MS, "reading the app table's fingerprint");
      this.store.answered();
      if (fingerprint === this.last && !this.store.refreshDue) return;
      await this.store.refresh();
      this.last = fingerprint;
    } catch (err) {
      this.store.failed(err);
    }
  }
}
