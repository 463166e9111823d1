// The debug console's page (issue 21): plain DOM, every value written with textContent (never as
// HTML), talking only to the node that served it. An operator opens it with the operator token; an
// app's owner with the app's id, key and secret, which sign a session request here in the browser
// (Web Crypto) so that the secret never leaves the page.
import { DATA_CHARS, readStream, type ConsoleWireEvent as ConsoleEvent } from '../events.js';

type Detail = NonNullable<ConsoleEvent['detail']>;
type Sample = NonNullable<ConsoleEvent['stats']>[number];

/** Rows kept on the page; the oldest go first. */
const MAX_ROWS = 2000;
/** Events waiting to be shown (paused, or faster than the speed); beyond it they are counted as skipped. */
const MAX_WAITING = 5000;

const base = location.pathname.endsWith('/') ? location.pathname : `${location.pathname}/`;
const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

let authorization = '';
let types: string[] = [];
let streamAbort: AbortController | undefined;
let streaming = false;
/** The app whose stream is open or opening; undefined once it ended or failed. */
let watchingApp: string | undefined;
let paused = false;
let waiting: ConsoleEvent[] = [];
let skippedHere = 0;
/** Lines the speed control allows now (a fraction builds up between ticks). */
let credit = 0;

function el(tag: string, cls: string, text?: string): HTMLElement {
  const e = document.createElement(tag);
  e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

async function api(path: string, init: RequestInit = {}): Promise<Response> {
  return fetch(`${base}api/${path}`, { ...init, headers: { ...(init.headers as Record<string, string>), authorization } });
}

async function hmacHex(secret: string, message: string): Promise<string> {
  if (!crypto.subtle) throw new Error('This page needs Web Crypto (open it over HTTPS or on localhost), or use the operator token or `ripple tail`.');
  const key = await crypto.subtle.importKey('raw', new TextEncoder().encode(secret), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  const sig = await crypto.subtle.sign('HMAC', key, new TextEncoder().encode(message));
  return [...new Uint8Array(sig)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

/** The app owner's session: POST .../session signed as the REST API is (auth_key, auth_timestamp, auth_version). */
async function appSession(appId: string, key: string, secret: string): Promise<string> {
  const path = `${base}api/apps/${encodeURIComponent(appId)}/session`;
  const query: Record<string, string> = { auth_key: key, auth_timestamp: String(Math.floor(Date.now() / 1000)), auth_version: '1.0' };
  const signed = Object.keys(query).sort().map((k) => `${k}=${query[k]}`).join('&');
  const signature = await hmacHex(secret, `POST\n${path}\n${signed}`);
  const qs = new URLSearchParams({ ...query, auth_signature: signature });
  const res = await fetch(`${path}?${qs}`, { method: 'POST' });
  const body = (await res.json()) as { token?: string; error?: string };
  if (!res.ok || !body.token) throw new Error(body.error ?? `refused (${res.status})`);
  return body.token;
}

async function open(credential: string, who: string): Promise<void> {
  authorization = `Bearer ${credential}`;
  const res = await api('apps');
  const body = (await res.json()) as { operator?: boolean; apps?: { id: string }[]; types?: string[]; error?: string };
  if (!res.ok) throw new Error(body.error ?? `refused (${res.status})`);
  types = (body.types ?? []).filter((t) => t !== 'skipped' && t !== 'stats');
  const select = $<HTMLSelectElement>('app');
  select.replaceChildren(...(body.apps ?? []).map((a) => Object.assign(document.createElement('option'), { value: a.id, textContent: a.id })));
  const boxes = $<HTMLFieldSetElement>('types');
  boxes.replaceChildren(boxes.querySelector('legend')!);
  for (const t of types) {
    const label = el('label', '');
    const box = Object.assign(document.createElement('input'), { type: 'checkbox', checked: true, value: t });
    box.dataset.type = t;
    box.addEventListener('change', refilter);
    label.append(box, document.createTextNode(` ${t}`));
    boxes.append(label);
  }
  $('who').textContent = who;
  $('login').hidden = true;
  $('main').hidden = false;
  // The same app chosen again (a script's select, a keyboard) keeps its open stream: a new one would drop
  // the events not shown yet (the nodes would say `watching` again to the new one, but not repeat the rest).
  select.onchange = () => void (select.value !== watchingApp && watch(select.value));
  if (select.value) await watch(select.value);
}

function shownTypes(): Set<string> {
  return new Set(Array.from(document.querySelectorAll<HTMLInputElement>('#types input:checked'), (b) => b.value));
}

/** Whether a row's event passes the type boxes and the search (channel, event, socket id, user id, text). */
function passes(ev: ConsoleEvent, shown: Set<string>, search: string): boolean {
  if (ev.type !== 'skipped' && !shown.has(ev.type)) return false;
  if (!search) return true;
  const hay = [ev.type, ev.channel, ...(ev.channels ?? []), ev.event, ev.socketId, ev.userId, ev.data, ev.node, JSON.stringify(ev.detail ?? {}), ev.doctor?.problem, ev.doctor?.fix]
    .filter(Boolean)
    .join('\n')
    .toLowerCase();
  return hay.includes(search);
}

const rows = new WeakMap<Element, ConsoleEvent>();

function refilter(): void {
  const shown = shownTypes();
  const search = $<HTMLInputElement>('search').value.trim().toLowerCase();
  for (const li of Array.from($('log').children)) {
    const ev = rows.get(li);
    if (ev) (li as HTMLElement).hidden = !passes(ev, shown, search);
  }
}

function describe(ev: ConsoleEvent): string {
  const d = ev.detail ?? {};
  return Object.entries(d)
    .filter(([, v]) => v !== undefined && v !== null && v !== '')
    .map(([k, v]) => `${k}=${String(v)}`)
    .join(' ');
}

function render(ev: ConsoleEvent): void {
  const li = el('li', `ev ${ev.type}${/refused/.test(ev.type) ? ' refused' : ''}`);
  li.dataset.type = ev.type;
  rows.set(li, ev);
  if (ev.type === 'skipped') {
    const why = ev.node === 'page' ? `left out by this page: more than ${MAX_WAITING} waiting to be shown` : 'events left out: more than this stream shows per second';
    li.append(el('span', 'time', new Date(ev.time).toLocaleTimeString()), el('span', 'type', `${ev.count ?? 0} skipped`), el('span', 'what', why));
  } else {
    li.append(el('span', 'time', new Date(ev.time).toLocaleTimeString()), el('span', 'type', ev.type));
    if (ev.channel || ev.channels) li.append(el('span', 'channel', ev.channel ?? ev.channels!.join(', ')));
    if (ev.event) li.append(el('span', 'event', ev.event));
    if (ev.socketId) li.append(el('span', 'socket', `socket ${ev.socketId}`));
    if (ev.userId) li.append(el('span', 'user', `user ${ev.userId}`));
    const detail = describe(ev);
    if (detail) li.append(el('span', 'detail', detail));
    if (ev.node) li.append(el('span', 'node', `node ${ev.node.slice(0, 8)}`));
    if (ev.type === 'api_message' && ev.event && ev.channels && (ev.data ?? '').length <= DATA_CHARS) {
      const replay = el('button', 'replay', 'Replay');
      replay.addEventListener('click', () => void send({ name: ev.event!, channels: ev.channels!, data: ev.data ?? '' }));
      li.append(replay);
    }
    if (ev.data !== undefined) li.append(el('div', 'data', ev.data));
    if (ev.doctor) {
      const doc = el('div', 'doctor');
      doc.append(el('div', 'problem', ev.doctor.problem), el('div', 'fix', `Fix: ${ev.doctor.fix}`));
      if (ev.doctor.signed !== undefined) doc.append(el('div', 'signed', `Server signed: ${ev.doctor.signed}`));
      if (ev.doctor.matches !== undefined) doc.append(el('div', 'matches', `Your signature matches: ${ev.doctor.matches}`));
      if (ev.doctor.otherApp !== undefined) doc.append(el('div', 'matches', `That app: ${ev.doctor.otherApp}`));
      li.append(doc);
    }
  }
  li.hidden = !passes(ev, shownTypes(), $<HTMLInputElement>('search').value.trim().toLowerCase());
  const log = $('log');
  log.prepend(li);
  while (log.childElementCount > MAX_ROWS) log.lastElementChild!.remove();
}

function arrive(ev: ConsoleEvent): void {
  if (ev.type === 'stats') return addStats(ev);
  if (waiting.length >= MAX_WAITING) return void skippedHere++;
  waiting.push(ev);
}

/** Shows what waits, at the chosen speed, unless paused; what the page had to leave out shows as one line. */
function pump(): void {
  if (!paused) {
    const speed = Number($<HTMLSelectElement>('speed').value);
    credit = speed === 0 ? waiting.length : Math.min(credit + speed / 10, speed);
    const n = Math.floor(credit);
    credit -= n;
    for (const ev of waiting.splice(0, n)) render(ev);
    if (skippedHere > 0) {
      render({ type: 'skipped', appId: '', node: 'page', time: Date.now(), count: skippedHere });
      skippedHere = 0;
    }
  }
  if (streaming) $('status').textContent = `${paused ? 'paused' : 'live'}${waiting.length ? `, ${waiting.length} waiting` : ''}`;
}

// --- overview: per-node samples (stats events) charted with their total; the occupied channels ---
const WINDOW_MS = 15 * 60 * 1000;
const COLOURS = ['#0969da', '#bf3989', '#1a7f37', '#9a6700', '#8250df', '#cf222e'];
/** node → time → sample */
let series = new Map<string, Map<number, Sample>>();

function addStats(ev: ConsoleEvent): void {
  const node = ev.node ?? '?';
  let s = series.get(node);
  if (!s) series.set(node, (s = new Map()));
  for (const sample of ev.stats ?? []) s.set(sample.t, sample);
  const oldest = Date.now() - WINDOW_MS;
  for (const t of s.keys()) if (t < oldest) s.delete(t);
  drawCharts();
}

function drawCharts(): void {
  const nodes = [...series.keys()].sort();
  const legend = $('legend');
  // (through CSSOM: the page's CSP allows no style attributes)
  const total = el('li', '', 'total');
  total.style.setProperty('--c', '#1b1f23');
  legend.replaceChildren(
    ...nodes.map((n, i) => {
      const li = el('li', '', `node ${n.slice(0, 8)}`);
      li.style.setProperty('--c', COLOURS[i % COLOURS.length]);
      return li;
    }),
    total,
  );
  draw($<HTMLCanvasElement>('chart-connections'), nodes, (s) => s.connections);
  draw($<HTMLCanvasElement>('chart-messages'), nodes, (s) => s.inPerSecond + s.outPerSecond);
}

/** One line per node and one for their total (samples of the same 5 s, summed), over the last 15 minutes. */
function draw(canvas: HTMLCanvasElement, nodes: string[], value: (s: Sample) => number): void {
  const ctx = canvas.getContext('2d');
  if (!ctx) return;
  const now = Date.now();
  const lines: { colour: string; points: [number, number][] }[] = nodes.map((n, i) => ({
    colour: COLOURS[i % COLOURS.length],
    points: [...series.get(n)!.values()].sort((a, b) => a.t - b.t).map((s) => [s.t, value(s)] as [number, number]),
  }));
  const total = new Map<number, number>();
  for (const l of lines) for (const [t, v] of l.points) total.set(Math.round(t / 5000), (total.get(Math.round(t / 5000)) ?? 0) + v);
  lines.push({ colour: '#1b1f23', points: [...total].sort((a, b) => a[0] - b[0]).map(([k, v]) => [k * 5000, v]) });
  const max = Math.max(1, ...lines.flatMap((l) => l.points.map((p) => p[1])));
  const { width, height } = canvas;
  ctx.clearRect(0, 0, width, height);
  ctx.fillStyle = '#57606a';
  ctx.font = '11px sans-serif';
  ctx.fillText(String(Math.round(max * 10) / 10), 4, 12);
  let drawn = 0;
  for (const l of lines) {
    ctx.strokeStyle = l.colour;
    ctx.fillStyle = l.colour;
    ctx.beginPath();
    l.points.forEach(([t, v], i) => {
      const x = width - ((now - t) / WINDOW_MS) * width;
      const y = height - 4 - (v / max) * (height - 20);
      if (i === 0) ctx.moveTo(x, y);
      else ctx.lineTo(x, y);
      ctx.fillRect(x - 1.5, y - 1.5, 3, 3);
      drawn++;
    });
    ctx.stroke();
  }
  canvas.dataset.points = String(drawn);
}

async function refreshChannels(): Promise<void> {
  const details = $<HTMLDetailsElement>('overview');
  const app = $<HTMLSelectElement>('app').value;
  if (!details.open || !app) return;
  const res = await api(`apps/${encodeURIComponent(app)}/channels`);
  if (!res.ok) return;
  const body = (await res.json()) as { total: number; channels: { name: string; subscriptions: number; users: number }[] };
  const tbody = $('channels').querySelector('tbody')!;
  tbody.replaceChildren(
    ...body.channels.map((c) => {
      const tr = document.createElement('tr');
      tr.append(el('td', 'name', c.name), el('td', 'subscriptions', String(c.subscriptions)), el('td', 'users', String(c.users)));
      return tr;
    }),
  );
  $('channels-total').textContent = body.total > body.channels.length ? `${body.total} occupied channels, the busiest ${body.channels.length} shown` : `${body.total} occupied channels`;
}

// --- webhook dead letters: inspect and replay ---
interface DeadLetter {
  url: string;
  events: { name?: string; channel?: string }[];
  attempts: number;
  error: string;
  failedAt: number;
}

async function refreshDead(): Promise<void> {
  const app = $<HTMLSelectElement>('app').value;
  const res = await api(`apps/${encodeURIComponent(app)}/dead-letters`);
  const body = (await res.json()) as { dead_letters?: DeadLetter[]; total?: number; error?: string };
  if (!res.ok) return void ($('dead-result').textContent = `refused: ${body.error ?? res.status}`);
  $('dead-result').textContent = `${body.total ?? 0} dead letter(s)`;
  $('dead').replaceChildren(
    ...(body.dead_letters ?? []).map((d) => {
      const li = el('li', 'dead-letter');
      const names = d.events.map((e) => `${e.name ?? '?'} ${e.channel ?? ''}`.trim()).join(', ');
      li.append(el('div', '', `${new Date(d.failedAt).toLocaleString()}  ${d.url}  ${d.attempts} attempts  ${d.error}`), el('div', '', names));
      const inspect = el('details', '');
      inspect.append(el('summary', '', 'Inspect'), el('pre', '', JSON.stringify(d.events, null, 2)));
      li.append(inspect);
      return li;
    }),
  );
}

async function replayDead(): Promise<void> {
  const app = $<HTMLSelectElement>('app').value;
  const res = await api(`apps/${encodeURIComponent(app)}/dead-letters/replay`, { method: 'POST' });
  const body = (await res.json()) as { replayed_events?: number; error?: string };
  $('dead-result').textContent = res.ok ? `${body.replayed_events} event(s) back on their queue` : `refused: ${body.error ?? res.status}`;
  if (res.ok) $('dead').replaceChildren();
}

async function watch(appId: string): Promise<void> {
  streamAbort?.abort();
  series = new Map();
  const abort = (streamAbort = new AbortController());
  watchingApp = appId;
  waiting = [];
  streaming = false;
  $('status').textContent = 'connecting';
  try {
    // The stream's bound (events a second, the rest counted as skipped): the page's own ?rate=N, else the node's default.
    const rate = new URLSearchParams(location.search).get('rate');
    const res = await api(`apps/${encodeURIComponent(appId)}/stream${rate ? `?rate=${encodeURIComponent(rate)}` : ''}`, { signal: abort.signal });
    if (!res.ok || !res.body) {
      if (!abort.signal.aborted) watchingApp = undefined;
      $('status').textContent = `refused (${res.status})`;
      return;
    }
    streaming = true;
    await readStream(res.body, arrive);
    if (!abort.signal.aborted) {
      streaming = false;
      watchingApp = undefined;
      $('status').textContent = 'stream ended';
    }
  } catch (err) {
    if (!abort.signal.aborted) {
      streaming = false;
      watchingApp = undefined;
      $('status').textContent = `stream failed: ${(err as Error).message}`;
    }
  }
}

async function send(body: { name: string; channels: string[]; data: string }): Promise<void> {
  const out = $('send-result');
  const res = await api(`apps/${encodeURIComponent($<HTMLSelectElement>('app').value)}/events`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  out.textContent = res.ok ? 'sent' : `refused: ${((await res.json()) as { error?: string }).error ?? res.status}`;
}

function fail(err: unknown): void {
  $('login-error').textContent = (err as Error).message;
}

$('operator-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const input = $<HTMLInputElement>('operator-token');
  void open(input.value, 'operator').catch(fail);
});
$('app-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const id = $<HTMLInputElement>('app-id').value;
  const secretInput = $<HTMLInputElement>('app-secret');
  const secret = secretInput.value;
  secretInput.value = '';
  void appSession(id, $<HTMLInputElement>('app-key').value, secret)
    .then((token) => open(token, `app ${id}`))
    .catch(fail);
});
$('search').addEventListener('input', refilter);
$('pause').addEventListener('click', () => {
  paused = !paused;
  $('pause').textContent = paused ? 'Resume' : 'Pause';
});
$('clear').addEventListener('click', () => $('log').replaceChildren());
$('creator-form').addEventListener('submit', (e) => {
  e.preventDefault();
  void send({ name: $<HTMLInputElement>('send-event').value, channels: [$<HTMLInputElement>('send-channel').value], data: $<HTMLTextAreaElement>('send-data').value }).catch(fail);
});
setInterval(pump, 100);
const deadFailed = (err: unknown) => void ($('dead-result').textContent = (err as Error).message);
$('dead-refresh').addEventListener('click', () => void refreshDead().catch(deadFailed));
$('dead-replay').addEventListener('click', () => void replayDead().catch(deadFailed));
$('webhooks').addEventListener('toggle', () => void refreshDead().catch(deadFailed));
setInterval(() => void refreshChannels().catch(() => {}), 5000);
$('overview').addEventListener('toggle', () => void refreshChannels().catch(() => {}));
