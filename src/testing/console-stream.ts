// The debug console's stream (src/console/routes.ts) as a test reads it: Server-Sent Events over
// fetch with the credential in a header, every event kept, and waits for the ones a test expects.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { requestSession } from '../commands/console-client.js';
import { readStream, type ConsoleWireEvent } from '../console/events.js';
import { eventually } from './eventually.js';
import { repoRoot, type AppCredentials } from './harness.js';

/** Builds the console's page into dist/console (a node serves it from there), as `npm start` does. */
export function buildConsolePage(): void {
  const built = spawnSync(process.execPath, [join(repoRoot, 'scripts', 'build-console.mjs')], { stdio: 'inherit' });
  if (built.status !== 0) throw new Error('the console page did not build (scripts/build-console.mjs)');
}

/** A record of the stream, as the page and `ripple tail` read it. */
export type SeenEvent = ConsoleWireEvent;

export class ConsoleWatch {
  readonly events: SeenEvent[] = [];
  private constructor(private readonly abort: AbortController) {}

  /**
   * Opens `<base>/ripple/console/api/apps/<appId>/stream?<query>`; resolves once the node answered
   * 200 and started the stream, or rejects with the status and error of a refusal.
   */
  static async open(base: string, appId: string, authorization: string, query = ''): Promise<ConsoleWatch> {
    const abort = new AbortController();
    const res = await fetch(`${base}/ripple/console/api/apps/${encodeURIComponent(appId)}/stream?${query}`, { headers: { authorization }, signal: abort.signal });
    if (!res.ok || !res.body) throw new Error(`${res.status} ${await res.text()}`);
    const watch = new ConsoleWatch(abort);
    void readStream(res.body, (ev) => watch.events.push(ev)).catch(() => {});
    return watch;
  }

  find(pred: (e: SeenEvent) => boolean): SeenEvent | undefined {
    return this.events.find(pred);
  }

  async waitFor(pred: (e: SeenEvent) => boolean, what: string, timeoutMs = 10_000): Promise<SeenEvent> {
    await eventually(() => this.find(pred) !== undefined, { timeoutMs, what: () => `${what}; events so far:\n${this.events.map((e) => JSON.stringify(e)).join('\n')}` });
    return this.find(pred)!;
  }

  close(): void {
    this.abort.abort();
  }
}

/** An app owner's console session token, requested as the page does (a REST-style signature). */
export async function consoleSession(base: string, app: AppCredentials, secret = app.secret): Promise<{ status: number; token?: string; error?: string }> {
  const { status, token, error } = await requestSession(`${base}/ripple/console/api/apps/${encodeURIComponent(app.id)}`, app.key, secret);
  return { status, token, error };
}
