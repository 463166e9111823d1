// `ripple apps list|add|update|disable|delete|rotate-secret`: the management API (api/routes/manage-apps.ts)
// from the command line, through a running node, so every node of a cluster follows at once. Secrets
// are printed masked, except a new one (added or rotated), once: it is not shown anywhere again.
import { parseArgs } from 'node:util';
import { storedAppFields } from '../config/schema.js';

const HELP = `Usage: ripple apps <action> [options]

Manages apps through a running node's management API (<url>/ripple/apps), which needs
the node's operator token. The apps must come from a database (APP_STORE_DRIVER, or
Soketi's or Sockudo's app manager settings) for anything but list.

Actions:
  list                       every app, secrets masked (bad rows with their problem)
  add [--FIELD=VALUE ...]    create an app; id, key and secret are generated unless given;
                             prints the secret once
  update ID --FIELD=VALUE... change fields of an app
  disable ID                 disable an app: its connections are closed (4003) on every node
  delete ID                  delete an app
  rotate-secret ID [--overlap SECONDS] [--secret SECRET]
                             give the app a new secret (printed once); the old one is still
                             accepted for SECONDS (default 86400) so backends can switch over

Fields: ${storedAppFields.join(', ')}
  (also in kebab-case or snake_case: --max-connections=100, --enable_client_messages=true;
  a value is read as JSON when it is JSON: numbers, true/false, webhooks as a list)

Options:
  --url URL         the node (default: RIPPLE_URL, else http://127.0.0.1:$PORT$PATH_PREFIX, PORT 6001)
  --token TOKEN     the operator token (default: OPERATOR_TOKEN)
  --json            print the API's JSON answer
  -h, --help        print this help
`;

const FIELDS = new Map<string, string>(storedAppFields.flatMap((f) => [f, kebab(f), snake(f)].map((n) => [n, f] as [string, string])));

class Usage extends Error {}

interface Parsed {
  action: string;
  id?: string;
  url: string;
  token?: string;
  json: boolean;
  overlap?: string;
  secret?: string;
  fields: Record<string, unknown>;
}

export async function run(argv: readonly string[], env: NodeJS.ProcessEnv): Promise<number> {
  let p: Parsed;
  try {
    p = parse(argv, env);
  } catch (err) {
    if (!(err instanceof Usage)) throw err;
    if (err.message === 'help') {
      process.stdout.write(HELP);
      return 0;
    }
    process.stderr.write(`ripple apps: ${err.message}\nRun 'ripple apps --help' for usage.\n`);
    return 2;
  }
  if (!p.token) {
    process.stderr.write('ripple apps: no operator token (--token, or OPERATOR_TOKEN as the node has it)\n');
    return 2;
  }
  const id = p.id === undefined ? '' : `/${encodeURIComponent(p.id)}`;
  const request =
    p.action === 'list' ? (['GET', '', undefined] as const)
    : p.action === 'add' ? (['POST', '', p.fields] as const)
    : p.action === 'update' ? (['PATCH', id, p.fields] as const)
    : p.action === 'disable' ? (['PATCH', id, { enabled: false }] as const)
    : p.action === 'delete' ? (['DELETE', id, undefined] as const)
    : (['POST', `${id}/rotate-secret`, { ...(p.overlap !== undefined && { overlapSeconds: Number(p.overlap) }), ...(p.secret !== undefined && { secret: p.secret }) }] as const);
  const [method, path, body] = request;
  let res: Response;
  try {
    res = await fetch(`${p.url.replace(/\/+$/, '')}/ripple/apps${path}`, {
      method,
      headers: { authorization: `Bearer ${p.token}`, ...(body && { 'content-type': 'application/json' }) },
      body: body && JSON.stringify(body),
    });
  } catch (err) {
    process.stderr.write(`ripple apps: cannot reach ${p.url}: ${(err as Error).cause ?? (err as Error).message}\n`);
    return 1;
  }
  const text = await res.text();
  const answer = text ? (JSON.parse(text) as Record<string, any>) : {};
  if (!res.ok) {
    process.stderr.write(`ripple apps: ${res.status} ${answer.error ?? text}\n`);
    return 1;
  }
  process.stdout.write(p.json ? `${JSON.stringify(answer, null, 2)}\n` : describe(p, answer));
  return 0;
}

function describe(p: Parsed, answer: Record<string, any>): string {
  switch (p.action) {
    case 'list':
      return table(answer.apps as Record<string, unknown>[]);
    case 'add':
      return `app ${answer.app.id} created\n  key:    ${answer.app.key}\n  secret: ${answer.secret}   (shown this once)\n`;
    case 'update':
      return `app ${answer.app.id} updated\n`;
    case 'disable':
      return `app ${answer.app.id} disabled\n`;
    case 'delete':
      return `app ${p.id} deleted\n`;
    default:
      return `app ${answer.id}: new secret ${answer.secret}   (shown this once)\n  the old secret is accepted until ${answer.previousSecretValidUntil}\n`;
  }
}

function table(apps: Record<string, unknown>[]): string {
  const rows = apps.map((a) =>
    a.problem !== undefined
      ? [String(a.id), '', '', '', '', `skipped: ${String(a.problem)}`]
      : [String(a.id), String(a.key), String(a.secret), a.enabled ? 'yes' : 'no', Number(a.maxConnections) < 0 ? 'unlimited' : String(a.maxConnections), String((a.webhooks as unknown[]).length)],
  );
  const head = ['ID', 'KEY', 'SECRET', 'ENABLED', 'MAX CONNECTIONS', 'WEBHOOKS'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  return [head, ...rows].map((r) => r.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd()).join('\n') + '\n';
}

function parse(argv: readonly string[], env: NodeJS.ProcessEnv): Parsed {
  const { values, tokens } = parseArgs({
    args: [...argv],
    options: { url: { type: 'string' }, token: { type: 'string' }, json: { type: 'boolean' }, overlap: { type: 'string' }, secret: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    strict: false,
    allowPositionals: true,
    tokens: true,
  });
  if (values.help) throw new Usage('help');
  const positionals = tokens.filter((t) => t.kind === 'positional').map((t) => (t as { value: string }).value);
  const [action, id, ...extra] = positionals;
  const actions = ['list', 'add', 'update', 'disable', 'delete', 'rotate-secret'];
  if (!action) throw new Usage(`an action is needed: ${actions.join(', ')}`);
  if (!actions.includes(action)) throw new Usage(`unknown action ${action} (${actions.join(', ')})`);
  const needsId = !['list', 'add'].includes(action);
  if (needsId && !id) throw new Usage(`${action} needs an app id`);
  if ((!needsId && id !== undefined) || extra.length) throw new Usage(`unexpected argument ${needsId ? extra[0] : id}`);

  const fields: Record<string, unknown> = {};
  const own = new Set(['url', 'token', 'json', 'overlap', 'secret', 'help']);
  for (const t of tokens) {
    if (t.kind !== 'option' || own.has(t.name)) continue;
    const field = FIELDS.get(t.name);
    if (!field) throw new Usage(`unknown option --${t.name}`);
    if (action !== 'add' && action !== 'update') throw new Usage(`--${t.name} is for add and update`);
    if (t.value === undefined) throw new Usage(`--${t.name} needs a value (--${t.name}=VALUE)`);
    fields[field] = ['id', 'key', 'secret'].includes(field) ? t.value : readValue(t.value);
  }
  // --secret is a field of add, and the new secret of rotate-secret
  if (values.secret !== undefined) {
    if (action === 'add' || action === 'update') fields.secret = values.secret;
    else if (action !== 'rotate-secret') throw new Usage('--secret is for add, update and rotate-secret');
  }
  if (values.overlap !== undefined && (action !== 'rotate-secret' || !/^\d+$/.test(String(values.overlap)))) {
    throw new Usage('--overlap takes a number of seconds, with rotate-secret');
  }
  if (action === 'update' && !Object.keys(fields).length) throw new Usage('update needs at least one --FIELD=VALUE');
  const url = (values.url as string | undefined) ?? env.RIPPLE_URL ?? `http://127.0.0.1:${env.PORT || 6001}${env.PATH_PREFIX ?? ''}`;
  return {
    action,
    id,
    url,
    token: (values.token as string | undefined) ?? env.OPERATOR_TOKEN,
    json: values.json === true,
    overlap: values.overlap as string | undefined,
    secret: action === 'rotate-secret' ? (values.secret as string | undefined) : undefined,
    fields,
  };
}

/** JSON when it is JSON (numbers, booleans, lists), else the text. */
function readValue(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function kebab(camel: string): string {
  return camel.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

function snake(camel: string): string {
  return camel.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}
