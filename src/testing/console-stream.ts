// The debug console's stream (src/console/routes.ts) as a test reads it: Server-Sent Events over
// fetch with the credential in a header, every event kept, and waits for the ones a test expects.
import { spawnSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { join } from 'node:path';
import { eventually } from './eventually.js';
import { repoRoot, type AppCredentials } from './harness.js';

/** Builds the console's page into dist/console (a node serves it from there), as `npm start` does. */
export function buildConsolePage(): void {
  const built = spawnSync(process.execPath, [join(repoRoot, 'scripts', 'build-console.mjs')], { stdio: 'inherit' });
  if (built.status !== 0) throw new Error('the console page did not build (scripts/build-console.mjs)');
}

export interface SeenEvent {
  type: string;
  appId: string;
  time: number;
  node?: string;
  socketId?: string;
  channel?: string;
  channels?: string[];
  event?: string;
  userId?: string;
  data?: string;
  count?: number;
  detail?: Record<string, unknown>;
  doctor?: { problem: string; fix: string; signed?: string; matches?: string };
}

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
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    void (async () => {
      let buffer = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        buffer += value;
        let end;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const data = block.split('\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).join('\n');
          if (data) watch.events.push(JSON.parse(data) as SeenEvent);
        }
      }
    })().catch(() => {});
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
  const path = `/ripple/console/api/apps/${encodeURIComponent(app.id)}/session`;
  const q: Record<string, string> = { auth_key: app.key, auth_timestamp: String(Math.floor(Date.now() / 1000)), auth_version: '1.0' };
  const signed = Object.keys(q).sort().map((k) => `${k}=${q[k]}`).join('&');
  const signature = createHmac('sha256', secret).update(`POST\n${new URL(base).pathname.replace(/\/$/, '')}${path}\n${signed}`).digest('hex');
  const res = await fetch(`${base}${path}?${new URLSearchParams({ ...q, auth_signature: signature })}`, { method: 'POST' });
  const body = (await res.json()) as { token?: string; error?: string };
  return { status: res.status, ...body };
}
