// The console's HTTP side on the uWS port, under `<pathPrefix>/ripple/console/` (registered only when
// the operator token is set, before the REST bridge's catch-all): the page and its script, the apps
// a credential may watch, an app owner's session (access.ts), the live stream (Server-Sent Events read
// with fetch, so the credential goes in a header, never in a URL), and the event creator (the REST
// API's trigger, on behalf of the watching credential). Every answer carries a strict
// Content-Security-Policy and the usual security headers; nothing is loaded from elsewhere.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseQuery } from 'node:querystring';
import type { Logger } from 'pino';
import type { HttpRequest, HttpResponse, TemplatedApp } from 'uWebSockets.js';
import type { AppStore } from '../apps/store.js';
import { HttpError } from '../api/errors.js';
import { verifySignedRequest } from '../api/signed-request.js';
import type { Trigger } from '../api/trigger.js';
import type { DeadLetters } from '../api/routes/webhooks.js';
import type { PresenceStore } from '../presence/store.js';
import { readBody } from '../transport/request-body.js';
import { accessOf, mayWatch, sessionToken, type Access } from './access.js';
import { CONSOLE_EVENT_TYPES, type ConsoleEvent, type ConsoleEventType } from './events.js';
import type { ConsoleRelay } from './relay.js';
import { ConsoleStream, rateOf } from './stream.js';

export interface ConsoleRoutesDeps {
  apps: AppStore;
  relay: ConsoleRelay;
  trigger: Trigger;
  /** the occupied channels, for the overview */
  store: PresenceStore;
  /** the webhook dead letters, to inspect and replay */
  deadLetters: DeadLetters;
  operatorToken: string;
  pathPrefix: string;
  maxRequestBytes: number;
  log: Logger;
}

const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
  'cache-control': 'no-store',
};

/** The page's files, built by scripts/build-console.mjs into dist/console/. */
const PAGE_FILES: Readonly<Record<string, string>> = {
  '': 'text/html; charset=utf-8',
  'console.js': 'text/javascript; charset=utf-8',
  'console.css': 'text/css; charset=utf-8',
};

function pageDir(): string | undefined {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    if (existsSync(join(dir, 'package.json'))) return join(dir, 'dist', 'console');
    dir = dirname(dir);
  }
  return undefined;
}

function head(res: HttpResponse, status: string, contentType: string): void {
  res.writeStatus(status);
  for (const [k, v] of Object.entries(SECURITY_HEADERS)) res.writeHeader(k, v);
  res.writeHeader('content-type', contentType);
}

function json(res: HttpResponse, status: number, body: unknown): void {
  res.cork(() => {
    head(res, `${status} ${status === 200 ? 'OK' : 'Error'}`, 'application/json; charset=utf-8');
    res.end(JSON.stringify(body));
  });
}

export interface ServedConsole {
  /** the page's path */
  path: string;
  /** Ends every open stream (the node stops). */
  close(): void;
}

/** Registers the console's routes (the page's missing build is logged: the API and `ripple tail` work without it). */
export function serveConsole(uws: TemplatedApp, d: ConsoleRoutesDeps): ServedConsole {
  const base = `${d.pathPrefix}/ripple/console`;
  /** open streams → how to end each */
  const open = new Set<() => void>();
  const dir = pageDir();
  const files = new Map<string, { body: Buffer; type: string }>();
  for (const [name, type] of Object.entries(PAGE_FILES)) {
    const path = dir && join(dir, name || 'index.html');
    if (path && existsSync(path)) files.set(name, { body: readFileSync(path), type });
  }
  if (files.size < Object.keys(PAGE_FILES).length) d.log.warn({ dir }, 'the console page is not built (npm run build builds it): only its API and `ripple tail` work');

  const page = (res: HttpResponse, name: string) => {
    const file = files.get(name);
    res.cork(() => {
      if (!file) {
        head(res, '404 Not Found', 'text/plain; charset=utf-8');
        return void res.end('The console page is not built on this node (npm run build).');
      }
      head(res, '200 OK', file.type);
      res.end(file.body);
    });
  };
  // Relative to a folder, so the page's script and style resolve under it.
  uws.get(base, (res) => void res.cork(() => res.writeStatus('301 Moved Permanently').writeHeader('location', `${base}/`).end()));
  uws.get(`${base}/`, (res) => page(res, ''));
  uws.get(`${base}/console.js`, (res) => page(res, 'console.js'));
  uws.get(`${base}/console.css`, (res) => page(res, 'console.css'));

  /** Reads the credential, then answers with `handle` once it says who is asking (401 when nobody). */
  const authorized = (res: HttpResponse, req: HttpRequest, handle: (access: Access, aborted: () => boolean) => void | Promise<void>, onAborted?: () => void) => {
    const authorization = req.getHeader('authorization');
    let aborted = false;
    // uWS keeps one abort handler per response.
    res.onAborted(() => {
      aborted = true;
      onAborted?.();
    });
    accessOf(authorization, d.operatorToken, d.apps)
      .then((access) => {
        if (aborted) return;
        if (!access) return json(res, 401, { error: 'The console needs the operator token, or a session signed with the app\'s key and secret' });
        return handle(access, () => aborted);
      })
      .catch((err) => {
        d.log.warn({ err }, 'console request failed');
        if (!aborted) json(res, 500, { error: 'Internal error' });
      });
  };

  uws.get(`${base}/api/apps`, (res, req) =>
    authorized(res, req, (access) => {
      const apps = d.apps.all().filter((a) => mayWatch(access, a.id));
      json(res, 200, { operator: access.operator, apps: apps.map((a) => ({ id: a.id, key: a.key, enabled: a.enabled })), types: CONSOLE_EVENT_TYPES });
    }),
  );

  // The overview's table: the app's occupied channels with their counts, cluster-wide.
  uws.get(`${base}/api/apps/:appId/channels`, (res, req) => {
    const appId = decodeSafe(req.getParameter(0) ?? '');
    authorized(res, req, async (access, aborted) => {
      if (!mayWatch(access, appId)) return void (aborted() || json(res, 403, { error: `This credential does not open app ${appId}` }));
      const channels = await d.store.channels(appId);
      const list = [...channels].map(([name, c]) => ({ name, subscriptions: c.subscriptionCount, users: c.userCount }));
      list.sort((a, b) => b.subscriptions - a.subscriptions || a.name.localeCompare(b.name));
      if (!aborted()) json(res, 200, { total: list.length, channels: list.slice(0, MAX_LISTED_CHANNELS) });
    });
  });

  // The webhook dead letters: inspected (the URL without user, password or query) and replayed.
  uws.get(`${base}/api/apps/:appId/dead-letters`, (res, req) => {
    const appId = decodeSafe(req.getParameter(0) ?? '');
    authorized(res, req, async (access, aborted) => {
      if (!mayWatch(access, appId)) return void (aborted() || json(res, 403, { error: `This credential does not open app ${appId}` }));
      const letters = (await d.deadLetters.listDead(appId)) as { url?: string }[];
      if (!aborted()) json(res, 200, { dead_letters: letters.slice(0, MAX_LISTED_DEAD_LETTERS).map((l) => ({ ...l, url: shownUrl(l.url) })), total: letters.length });
    });
  });
  uws.post(`${base}/api/apps/:appId/dead-letters/replay`, (res, req) => {
    const appId = decodeSafe(req.getParameter(0) ?? '');
    authorized(res, req, async (access, aborted) => {
      if (!mayWatch(access, appId)) return void (aborted() || json(res, 403, { error: `This credential does not open app ${appId}` }));
      const replayed = await d.deadLetters.replayDead(appId);
      if (!aborted()) json(res, 200, { replayed_events: replayed });
    });
  });

  // An app owner's session: the request is signed as the REST API's are (spec §9.2).
  uws.post(`${base}/api/apps/:appId/session`, (res, req) => {
    const appId = decodeSafe(req.getParameter(0) ?? '');
    const path = req.getUrl();
    const query = parseQuery(req.getQuery() ?? '');
    let aborted = false;
    res.onAborted(() => (aborted = true));
    readBody(res, d.maxRequestBytes, true, {
      done: (body) => {
        Promise.resolve()
          .then(() => verifySignedRequest(d.apps, { appId, method: 'POST', path, query, rawBody: body }))
          .then(
            ({ app }) => !aborted && json(res, 200, sessionToken(app)),
            (err) => !aborted && json(res, err instanceof HttpError ? err.status : 500, { error: err instanceof HttpError ? err.message : 'Internal error' }),
          );
      },
      tooLarge: () => !aborted && json(res, 413, { error: 'Body too large' }),
      failed: () => !aborted && json(res, 500, { error: 'Internal error' }),
    });
  });

  uws.get(`${base}/api/apps/:appId/stream`, (res, req) => {
    const appId = decodeSafe(req.getParameter(0) ?? '');
    const q = new URLSearchParams(req.getQuery() ?? '');
    const types = q.get('type') ? new Set(q.get('type')!.split(',').filter((t): t is ConsoleEventType => (CONSOLE_EVENT_TYPES as readonly string[]).includes(t))) : undefined;
    const channel = q.get('channel') ?? undefined;
    const rate = rateOf(q.get('rate'));
    let closed = false;
    const stops: (() => void)[] = [];
    const abort = () => {
      closed = true;
      for (const stop of stops) stop();
      open.delete(end);
    };
    const end = () => {
      if (closed) return;
      abort();
      res.cork(() => res.end());
    };
    authorized(res, req, async (access, aborted) => {
      if (!mayWatch(access, appId) || !(await d.apps.findById(appId))) {
        if (!aborted()) json(res, 403, { error: `This credential does not open app ${appId}` });
        return;
      }
      if (aborted()) return;
      if (open.size >= MAX_STREAMS) return json(res, 503, { error: `This node serves ${MAX_STREAMS} console streams already: close one, or watch through another node` });
      const write = (chunk: string) => {
        if (closed) return true;
        let ok = true;
        res.cork(() => (ok = res.write(chunk)));
        return ok;
      };
      const stream = new ConsoleStream(write, rate, { types, channel });
      stops.push(() => stream.close());
      open.add(end);
      res.onWritable(() => {
        stream.writable();
        return true;
      });
      res.cork(() => {
        head(res, '200 OK', 'text/event-stream; charset=utf-8');
        res.write(`: watching ${appId}\n\n`);
      });
      // An app's owner is not told which other app a mistake points to (Diagnosis.otherApp): the operator is.
      const push = access.operator
        ? stream.push.bind(stream)
        : (ev: ConsoleEvent, json: string) => stream.push(ev, ev.doctor?.otherApp === undefined ? json : JSON.stringify({ ...ev, doctor: { ...ev.doctor, otherApp: undefined } }));
      const watches = [d.relay.watch(appId, push)];
      // Connections with a key no app has belong to no app: the operator sees them on any app's stream.
      if (access.operator) watches.push(d.relay.watch('', push));
      for (const w of watches) {
        const stop = await w;
        if (closed) stop();
        else stops.push(stop);
      }
    }, abort);
  });

  // The event creator: one event, as POST /apps/<id>/events would publish it (validation, limits).
  uws.post(`${base}/api/apps/:appId/events`, (res, req) => {
    const appId = decodeSafe(req.getParameter(0) ?? '');
    const authorization = req.getHeader('authorization');
    let aborted = false;
    res.onAborted(() => (aborted = true));
    readBody(res, d.maxRequestBytes, true, {
      done: (body) => {
        void (async () => {
          const access = await accessOf(authorization, d.operatorToken, d.apps);
          if (aborted) return;
          if (!access || !mayWatch(access, appId)) return json(res, access ? 403 : 401, { error: 'This credential does not open this app' });
          const app = await d.apps.findById(appId);
          if (!app) return json(res, 404, { error: `App ${appId} does not exist` });
          if (!app.enabled) return json(res, 403, { error: 'The app is disabled' });
          let parsed: unknown;
          try {
            parsed = JSON.parse(body.toString('utf8'));
          } catch {
            return json(res, 400, { error: 'The body is not JSON' });
          }
          const answer = await d.trigger.events(app, parsed, () => {});
          if (!aborted) json(res, 200, answer);
        })().catch((err) => {
          if (aborted) return;
          if (err instanceof HttpError) json(res, err.status, { error: err.message });
          else {
            d.log.warn({ err }, 'console event creator failed');
            json(res, 500, { error: 'Internal error' });
          }
        });
      },
      tooLarge: () => !aborted && json(res, 413, { error: 'Body too large' }),
      failed: () => !aborted && json(res, 500, { error: 'Internal error' }),
    });
  });
  return {
    path: `${base}/`,
    close: () => {
      for (const end of [...open]) end();
    },
  };
}

/** Open console streams a node serves at once (each holds a connection, a timer and a relay viewer). */
export const MAX_STREAMS = 100;

/** The overview lists the busiest channels; the total says how many there are. */
const MAX_LISTED_CHANNELS = 500;

/** Dead letters listed at once (the first the store answers; in Redis the newest); the total says how many there are. */
const MAX_LISTED_DEAD_LETTERS = 100;

/** A webhook URL without what may be a secret in it (user, password, query). */
function shownUrl(url: string | undefined): string {
  try {
    const u = new URL(url ?? '');
    return u.origin + u.pathname;
  } catch {
    return '(invalid URL)';
  }
}

function decodeSafe(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}
