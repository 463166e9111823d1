// Waiting in tests: `sleep`, and one polling loop for everything that has to become true within a
// time limit. `eventually` fails the test when the time is up; `waitUntil` only reports whether the
// check held, for tests that then assert with their own message (an exact count, a deep-equal diff).

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export interface WaitOptions {
  timeoutMs: number;
  /** Pause between two checks; default 25 ms. */
  intervalMs?: number;
  /**
   * Also retry when check() throws (assertion-style checks, probes that fail until a server listens);
   * the last error is reported at the deadline. Default false: a throw fails at once, as a failed
   * assertion inside the check should.
   */
  retryThrows?: boolean;
}

export interface EventuallyOptions extends WaitOptions {
  /** What was awaited, for the failure message; a function so the message can show the state at the deadline. */
  what: string | (() => string);
}

/** A check holds when it returns anything but `false` without throwing (so assertion-style checks that return nothing hold once they stop throwing). */
type Check = () => boolean | void | Promise<boolean | void>;

const defaultIntervalMs = 25;

async function poll(check: Check, opts: WaitOptions): Promise<{ held: boolean; lastError?: unknown }> {
  const deadline = Date.now() + opts.timeoutMs;
  const intervalMs = opts.intervalMs ?? defaultIntervalMs;
  for (;;) {
    let lastError: unknown;
    try {
      if ((await check()) !== false) return { held: true };
    } catch (err) {
      if (!opts.retryThrows) throw err;
      lastError = err;
    }
    if (Date.now() > deadline) return { held: false, lastError };
    await sleep(intervalMs);
  }
}

/** Polls check() until it holds; resolves whether it did before the time was up. */
export async function waitUntil(check: Check, opts: WaitOptions): Promise<boolean> {
  return (await poll(check, opts)).held;
}

/** Polls check() until it holds; rejects with `not within <timeoutMs> ms: <what>` when the time is up. */
export async function eventually(check: Check, opts: EventuallyOptions): Promise<void> {
  const { held, lastError } = await poll(check, opts);
  if (held) return;
  const what = typeof opts.what === 'function' ? opts.what() : opts.what;
  const last = lastError === undefined ? '' : `\nlast error: ${lastError instanceof Error ? lastError.message : String(lastError)}`;
  throw new Error(`not within ${opts.timeoutMs} ms: ${what}${last}`);
}
