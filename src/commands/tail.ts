// `ripple tail --app <id>`: the debug console's live log (issue 21) in a terminal, from a running node
// (over SSH on a production node, or from a laptop): every node's events of the app, with the
// connection doctor's explanations, one line each. The operator token opens any app; an app's key and
// secret open that app (they sign a session request here; the secret is not sent).
import { parseArgs } from 'node:util';
import { readStream, type ConsoleWireEvent } from '../console/events.js';
import { requestSession } from './console-client.js';

const HELP = `Usage: ripple tail --app ID [options]

Streams an app's debug log from a running node: connections, subscriptions, API messages,
client events, webhooks, recovery, and every refused handshake, subscription and REST
request with what went wrong and how to fix it. Needs the node's operator token to be set.

Options:
  --app ID          the app to watch
  --channel NAME    only events of this channel
  --type T[,T...]   only these types (connection_opened, connection_closed, connection_refused,
                    subscribed, subscription_refused, unsubscribed, channel_occupied,
                    channel_vacated, member_added, member_removed, api_message, api_refused,
                    client_event, cache_miss, webhook, recovery, watching, stats)
  --rate N          at most N events a second (default 100; the rest are counted as skipped)
  --url URL         the node (default: RIPPLE_URL, else http://127.0.0.1:$PORT$PATH_PREFIX, PORT 6001)
  --token TOKEN     the operator token (default: OPERATOR_TOKEN)
  --key KEY --secret SECRET
                    the app's own key and secret instead of the operator token
                    (default: APP_KEY and APP_SECRET when no token is given)
  --json            one JSON object a line
  -h, --help        print this help
`;

class Usage extends Error {}

interface Options {
  app: string;
  url: string;
  query: URLSearchParams;
  token?: string;
  key?: string;
  secret?: string;
  json: boolean;
}

export async function run(argv: readonly string[], env: NodeJS.ProcessEnv): Promise<number> {
  let o: Options;
  try {
    o = parse(argv, env);
  } catch (err) {
    if (!(err instanceof Usage)) throw err;
    if (err.message === 'help') {
      process.stdout.write(HELP);
      return 0;
    }
    process.stderr.write(`ripple tail: ${err.message}\nRun 'ripple tail --help' for usage.\n`);
    return 2;
  }
  const base = `${o.url.replace(/\/+$/, '')}/ripple/console/api/apps/${encodeURIComponent(o.app)}`;
  const stop = new AbortController();
  const quit = () => stop.abort();
  process.once('SIGINT', quit);
  process.once('SIGTERM', quit);
  try {
    const token = o.token ?? (await session(base, o.app, o.key!, o.secret!));
    const res = await fetch(`${base}/stream?${o.query}`, { headers: { authorization: `Bearer ${token}` }, signal: stop.signal });
    if (!res.ok || !res.body) {
      const text = await res.text();
      process.stderr.write(`ripple tail: ${res.status} ${refusal(res.status, text)}\n`);
      return 1;
    }
    process.stderr.write(`watching app ${o.app} on ${o.url} (Ctrl-C to stop)\n`);
    await readStream(res.body, (ev, json) => {
      // The overview's samples are for charts: shown only when asked for.
      if (ev.type === 'stats' && !o.query.get('type')?.split(',').includes('stats')) return;
      process.stdout.write(o.json ? `${json}\n` : line(ev));
    });
    process.stderr.write('ripple tail: the node closed the stream\n');
    return 1;
  } catch (err) {
    if (stop.signal.aborted) return 0;
    process.stderr.write(`ripple tail: ${(err as Error).message}${(err as Error).cause ? `: ${String((err as Error).cause)}` : ''}\n`);
    return 1;
  } finally {
    process.off('SIGINT', quit);
    process.off('SIGTERM', quit);
  }
}

function refusal(status: number, text: string): string {
  let error: string | undefined;
  try {
    error = (JSON.parse(text) as { error?: string }).error;
  } catch {
    error = text || undefined;
  }
  // The console's own 404s name what is missing; the API's catch-all ("Not found") means no console here.
  if (status === 404 && (error === undefined || error === 'Not found')) return 'no console here: the node needs OPERATOR_TOKEN set (and a recent ripple)';
  return error ?? text;
}

/** An app owner's session token (the key and secret sign the request; the secret is not sent). */
async function session(base: string, app: string, key: string, secret: string): Promise<string> {
  const r = await requestSession(base, key, secret);
  if (r.status !== 200 || !r.token) throw new Error(`app ${app}'s key and secret were refused: ${r.status} ${refusal(r.status, r.text)}`);
  return r.token;
}


/** One event as a terminal line (and the doctor's explanation indented under it); control characters escaped. */
export function line(ev: ConsoleWireEvent): string {
  const time = new Date(ev.time).toISOString().slice(11, 23);
  if (ev.type === 'skipped') return `${time} ${ev.count} events skipped (over the stream's rate)\n`;
  const parts = [time, (ev.node ?? '').slice(0, 8).padEnd(8), ev.type.padEnd(20)];
  if (ev.channel || ev.channels) parts.push(ev.channel ?? ev.channels!.join(','));
  if (ev.event) parts.push(ev.event);
  if (ev.socketId) parts.push(`socket=${ev.socketId}`);
  if (ev.userId) parts.push(`user=${ev.userId}`);
  for (const [k, v] of Object.entries(ev.detail ?? {})) if (v !== undefined && v !== null && v !== '') parts.push(`${k}=${String(v)}`);
  if (ev.data !== undefined) parts.push(`data=${ev.data}`);
  let out = `${safe(parts.join(' '))}\n`;
  if (ev.doctor) {
    out += `    problem: ${safe(ev.doctor.problem)}\n    fix:     ${safe(ev.doctor.fix)}\n`;
    if (ev.doctor.signed !== undefined) out += `    server signed: ${JSON.stringify(ev.doctor.signed)}\n`;
    if (ev.doctor.matches !== undefined) out += `    your signature matches: ${safe(ev.doctor.matches)}\n`;
    if (ev.doctor.otherApp !== undefined) out += `    that app: ${safe(ev.doctor.otherApp)}\n`;
  }
  return out;
}

/** A payload must not move the cursor or recolour the terminal. */
function safe(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => (c === '\n' ? '\\n' : `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`));
}

function parse(argv: readonly string[], env: NodeJS.ProcessEnv): Options {
  const { values, positionals } = parseArgs({
    args: [...argv],
    options: {
      app: { type: 'string' },
      channel: { type: 'string' },
      type: { type: 'string' },
      rate: { type: 'string' },
      url: { type: 'string' },
      token: { type: 'string' },
      key: { type: 'string' },
      secret: { type: 'string' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
    allowPositionals: true,
  });
  if (values.help) throw new Usage('help');
  if (positionals.length) throw new Usage(`unexpected argument ${positionals[0]}`);
  if (!values.app) throw new Usage('--app is needed');
  if (values.rate !== undefined && !/^\d+$/.test(values.rate)) throw new Usage('--rate takes a number of events a second');
  const query = new URLSearchParams();
  if (values.channel) query.set('channel', values.channel);
  if (values.type) query.set('type', values.type);
  if (values.rate) query.set('rate', values.rate);
  const key = values.key ?? env.APP_KEY;
  const secret = values.secret ?? env.APP_SECRET;
  const token = values.token ?? (values.key || values.secret ? undefined : env.OPERATOR_TOKEN);
  if (!token && !(key && secret)) throw new Usage('no credential: --token (or OPERATOR_TOKEN), or --key and --secret');
  const url = values.url ?? env.RIPPLE_URL ?? `http://127.0.0.1:${env.PORT || 6001}${env.PATH_PREFIX ?? ''}`;
  return { app: values.app, url, query, token, key, secret, json: values.json === true };
}
