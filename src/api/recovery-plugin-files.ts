// The message-recovery plugin (recovery-plugin/, built by its scripts/build.mjs) served by the node
// itself, so a page adds one <script> with no npm step: the script-tag build (global RippleRecovery)
// and the ESM build, at a path that names the plugin's version and so can be cached for good.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import type { HttpRequest, HttpResponse, TemplatedApp } from 'uWebSockets.js';

/** URL name under `<prefix>/ripple-recovery/<version>/` → file under recovery-plugin/dist/. */
const FILES: Readonly<Record<string, string>> = {
  'ripple-recovery.min.js': 'browser/ripple-recovery.min.js',
  'ripple-recovery.min.js.map': 'browser/ripple-recovery.min.js.map',
  'ripple-recovery.js': 'browser/ripple-recovery.js',
  'ripple-recovery.js.map': 'browser/ripple-recovery.js.map',
  'esm/index.js': 'esm/index.js',
  'esm/index.js.map': 'esm/index.js.map',
};

interface ServedFile {
  body: Buffer;
  contentType: string;
  etag: string;
}

/** The plugin's folder: next to src/ in a checkout, next to dist/ in an installed package. */
function pluginDir(): string | undefined {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    const candidate = join(dir, 'recovery-plugin');
    if (existsSync(join(candidate, 'package.json'))) return candidate;
    dir = dirname(dir);
  }
  return undefined;
}

/**
 * Serves the built plugin under `<pathPrefix>/ripple-recovery/<version>/`; register before any
 * catch-all route. Returns that path, or undefined (logged) when the plugin has not been built.
 */
export function serveRecoveryPlugin(uws: TemplatedApp, pathPrefix: string, log: Logger): string | undefined {
  const dir = pluginDir();
  const version = dir && (JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { version: string }).version;
  const files = new Map<string, ServedFile>();
  for (const [name, file] of Object.entries(FILES)) {
    const path = dir && join(dir, 'dist', file);
    if (!path || !existsSync(path)) {
      log.warn(
        { missing: path ?? 'recovery-plugin/' },
        'the recovery plugin is not built, so this node does not serve it (npm start builds it; or run npm run build:recovery-plugin)',
      );
      return undefined;
    }
    const body = readFileSync(path);
    const contentType = name.endsWith('.map') ? 'application/json; charset=utf-8' : 'text/javascript; charset=utf-8';
    files.set(name, { body, contentType, etag: `"${createHash('sha1').update(body).digest('base64url')}"` });
  }
  const base = `${pathPrefix}/ripple-recovery/${version}/`;

  uws.get(`${pathPrefix}/ripple-recovery/*`, (res: HttpResponse, req: HttpRequest) => {
    // uWS's request is read before anything is written to the response
    const url = req.getUrl();
    const ifNoneMatch = req.getHeader('if-none-match');
    const file = url.startsWith(base) ? files.get(url.slice(base.length)) : undefined;
    if (!file) {
      res.writeStatus('404 Not Found').writeHeader('cache-control', 'no-store').end(`Not found; this node serves ${base}ripple-recovery.min.js`);
      return;
    }
    // The version is in the path: a file there never changes. Any origin may load it, as a module too.
    // (uWS takes the status line before any header.)
    const fresh = ifNoneMatch === file.etag;
    if (fresh) res.writeStatus('304 Not Modified');
    res.writeHeader('cache-control', 'public, max-age=31536000, immutable');
    res.writeHeader('access-control-allow-origin', '*');
    res.writeHeader('etag', file.etag);
    if (fresh) res.end();
    else res.writeHeader('content-type', file.contentType).end(file.body);
  });
  return base;
}
