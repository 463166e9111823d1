// A whole node's session logic in this process, on the in-memory transport and the memory engine:
// for unit tests of sessions and channels without sockets or server processes.
import { ConsoleTap } from '../console/tap.js';
import { pino } from 'pino';
import type { App } from '../apps/app.js';
import { StaticAppStore } from '../apps/static-store.js';
import { CommandRouter } from '../backbone/command-router.js';
import { Channels } from '../channels/channels.js';
import { AppSchema } from '../config/schema.js';
import { memoryEngine } from '../engine/memory.js';
import type { ChannelHistory } from '../history/history.js';
import { Hub } from '../hub/hub.js';
import { Metrics } from '../metrics/metrics.js';
import { LinkedSession, refuseConnection, type Session } from '../session/session.js';
import { Sessions } from '../session/sessions.js';
import { MemoryFanout, type MemoryConnection } from '../transport/memory.js';
import type { WebhookEvent, WebhookSink } from '../webhooks/sink.js';

export const silentLog = pino({ level: 'silent' });
const log = silentLog;

/** Webhook events as the channel owner emits them, in order. */
export class RecordingSink implements WebhookSink {
  readonly events: WebhookEvent[] = [];
  emit(_app: App, event: WebhookEvent): void {
    this.events.push(event);
  }
  named(name: string): WebhookEvent[] {
    return this.events.filter((e) => e.name === name);
  }
}

/** Lets pending promise callbacks (store answers) run. */
export const flush = () => new Promise((r) => setImmediate(r));

export interface MemoryNodeOptions {
  /** replaces the engine's history reader (e.g. one that answers slowly) */
  history?: ChannelHistory;
}

export async function memoryNode(apps: unknown[] = [{ id: 'a1', key: 'k1', secret: 's1', enableClientMessages: true }], opts: MemoryNodeOptions = {}) {
  const registry = new StaticAppStore(apps.map((a) => AppSchema.parse(a)));
  const metrics = new Metrics();
  const engine = memoryEngine(60_000);
  const webhooks = new RecordingSink();
  const hub = new Hub(metrics);
  const fanout = new MemoryFanout();
  hub.addFanout(fanout);
  const history = opts.history ?? engine.history;
  const tap = new ConsoleTap('memory', () => registry.all());
  const channels = new Channels({ apps: registry, hub, backbone: engine.backbone, store: engine.store, cache: engine.cache, history, webhooks, metrics, log, tap });
  const settings = { activityTimeout: 120, pongTimeout: 30, maxBackpressureBytes: 1000 };
  const sessions = new Sessions({ apps: registry, hub, channels, webhooks, census: engine.census, metrics, settings, log, tap });
  const commands = new CommandRouter(log);
  commands.on('terminate-user', (c) => sessions.terminateUser(c.appId, c.userId));
  await engine.start({ frames: hub, commands, clusterState: channels, feed: channels });

  /** Opens a connection the way a transport does; `s` is undefined when the handshake refused it. */
  async function connect(key = 'k1', protocol = '7', origin = ''): Promise<{ conn: MemoryConnection; s?: Session; send: (f: object) => void }> {
    const conn = fanout.connect({ origin });
    const outcome = await sessions.connect({ key, protocol, origin, remoteAddress: conn.remoteAddress }, () => false);
    if (!outcome.ok) {
      refuseConnection(conn, outcome.code, outcome.message);
      return { conn, send: () => {} };
    }
    const s = sessions.open(new LinkedSession(conn), outcome.app);
    // Closed through the Connection, as the server closes it (a test plays the client that way too).
    conn.whenClosed((code) => sessions.closed(s, code, 'server'));
    const send = (f: object) => {
      const text = JSON.stringify(f);
      sessions.receive(s, text, text.length);
    };
    return { conn, s, send };
  }
  return { registry, engine, sessions, channels, webhooks, fanout, connect, metrics };
}
