// Browser tests' two parts: headless Chromium (the system /usr/bin/chromium driven by playwright-core,
// never a downloaded browser) and a server on 127.0.0.1 for the pages and scripts it loads.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { chromium, type Browser } from 'playwright-core';

const chromiumPath = '/usr/bin/chromium';
const chromiumArgs = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];

export function launchChromium(): Promise<Browser> {
  assert.ok(existsSync(chromiumPath), `${chromiumPath} is missing: run scripts/test-deps.sh (apt-get install -y chromium)`);
  return chromium.launch({ executablePath: chromiumPath, args: chromiumArgs });
}

export interface PageServer {
  port: number;
  close(): Promise<void>;
}

/**
 * Serves pages on a free port of 127.0.0.1: `answer` answers a request and returns true, or returns
 * false for a 404. `/favicon.ico` gets 204 (the browser asks for it; a 404 would show up as a console
 * error).
 */
export async function servePages(answer: (req: IncomingMessage, res: ServerResponse, url: URL) => boolean): Promise<PageServer> {
  const http = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    if (url.pathname === '/favicon.ico') res.writeHead(204).end();
    else if (!answer(req, res, url)) res.writeHead(404).end();
  });
  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(0, '127.0.0.1', () => resolve());
  });
  const addr = http.address();
  return {
    port: typeof addr === 'object' && addr ? addr.port : 0,
    close: () => new Promise<void>((resolve) => http.close(() => resolve())),
  };
}
