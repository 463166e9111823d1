// Helpers for the sdk-compat tests of sign-in, server-to-user events, watchlists, cache channels and
// subscription counts: pusher-js clients authorised by the `pusher` server SDK (no auth endpoint in
// between), with everything each client saw recorded for exact assertions.
import PusherServer from 'pusher';
import type { UserAuthenticationHandler } from 'pusher-js';
import { Pusher, type PusherClient } from '../src/testing/pusher-js.js';
import { eventually } from '../src/testing/eventually.js';

export const app = { id: 'app-id', key: 'app-key', secret: 'app-secret' };
/** 32 bytes, base64: the server SDK's encryptionMasterKeyBase64 for private-encrypted- channels. */
export const masterKey = Buffer.alloc(32, 7).toString('base64');

export function sdk(port: number, creds: { id: string; key: string; secret: string } = app): PusherServer {
  return new PusherServer({
    appId: creds.id,
    key: creds.key,
    secret: creds.secret,
    host: '127.0.0.1',
    port: String(port),
    useTLS: false,
    encryptionMasterKeyBase64: masterKey,
  });
}

/** A frame as pusher-js decoded it (data parsed when it was a JSON string). */
export interface SeenFrame {
  event: string;
  channel?: string;
  data?: unknown;
  user_id?: string;
}

export interface Client {
  p: PusherClient;
  /** Every frame the connection received, decoded by pusher-js. */
  frames: SeenFrame[];
  /** `error` events of the connection (pusher:error frames and close codes both arrive here). */
  errors: { type: string; code?: number | null; message?: string }[];
  /** Connection states in order, starting with the first change. */
  states: string[];
  /** Codes of PusherError connection errors, in order. */
  errorCodes(): (number | null | undefined)[];
}

export interface ClientSpec {
  /** Signs in as this user when `signin()` is called (server SDK authenticateUser). */
  user?: PusherServer.UserChannelData;
  /** Replaces the sign-in handler (e.g. to return a forged signature). */
  userAuth?: UserAuthenticationHandler;
  /** channel_data for presence channels. */
  presence?: PusherServer.PresenceChannelData;
  key?: string;
}

export class Clients {
  readonly all: Client[] = [];

  make(port: number, server: PusherServer, spec: ClientSpec = {}): Client {
    const userAuth: UserAuthenticationHandler =
      spec.userAuth ??
      (({ socketId }, cb) => {
        if (!spec.user) return cb(new Error('this test client has no user'), null);
        cb(null, server.authenticateUser(socketId, spec.user));
      });
    const p = new Pusher(spec.key ?? app.key, {
      cluster: 'mt1',
      wsHost: '127.0.0.1',
      wsPort: port,
      forceTLS: false,
      enabledTransports: ['ws'],
      disableStats: true,
      channelAuthorization: {
        endpoint: '',
        transport: 'ajax',
        customHandler: ({ socketId, channelName }, cb) =>
          cb(null, server.authorizeChannel(socketId, channelName, channelName.startsWith('presence-') ? spec.presence : undefined)),
      },
      userAuthentication: { endpoint: '', transport: 'ajax', customHandler: userAuth },
    });
    const c: Client = {
      p,
      frames: [],
      errors: [],
      states: [],
      errorCodes: () => c.errors.filter((e) => e.type === 'PusherError').map((e) => e.code),
    };
    p.connection.bind('message', (m: SeenFrame) => c.frames.push(m));
    p.connection.bind('error', (e: { type: string; data?: { code?: number | null; message?: string } }) =>
      c.errors.push({ type: e.type, code: e.data?.code, message: e.data?.message }),
    );
    p.connection.bind('state_change', (s: { current: string }) => c.states.push(s.current));
    this.all.push(c);
    return c;
  }

  closeAll(): void {
    for (const c of this.all) c.p.disconnect();
  }
}

export async function connected(c: Client, ms = 5000): Promise<string> {
  await eventually(() => c.p.connection.state === 'connected', { timeoutMs: ms, what: () => `connected (states: ${c.states.join(',')})` });
  return c.p.connection.socket_id;
}

/**
 * Calls pusher.signin() and waits for pusher:signin_success; resolves with the data of that frame.
 * Fails when the connection reports an error or sign-in does not finish in time.
 */
export async function signIn(c: Client, ms = 5000): Promise<{ user_data: string }> {
  await connected(c, ms);
  const from = c.frames.length;
  const errorsBefore = c.errors.length;
  c.p.signin();
  let found: SeenFrame | undefined;
  await eventually(
    () => {
      if (c.errors.length > errorsBefore) throw new Error(`sign-in failed: ${JSON.stringify(c.errors.slice(errorsBefore))}`);
      found = c.frames.slice(from).find((f) => f.event === 'pusher:signin_success');
      return found !== undefined;
    },
    { timeoutMs: ms, what: 'pusher:signin_success' },
  );
  return found!.data as { user_data: string };
}

/** pusher-js's own view: signed in and subscribed to #server-to-user-<id>. */
export async function userChannelReady(c: Client, ms = 5000): Promise<void> {
  await eventually(() => c.p.user.serverToUserChannel?.subscribed === true, { timeoutMs: ms, what: 'subscribed to #server-to-user-<id>' });
}

export type Channel = ReturnType<PusherClient['subscribe']>;

/** Subscribes and waits for pusher:subscription_succeeded (rejects on pusher:subscription_error). */
export function subscribed(c: Client, name: string, ms = 5000): Promise<Channel> {
  return new Promise((resolve, reject) => {
    const ch = c.p.subscribe(name);
    const t = setTimeout(() => reject(new Error(`subscription to ${name} not confirmed in ${ms} ms`)), ms);
    ch.bind('pusher:subscription_succeeded', () => {
      clearTimeout(t);
      resolve(ch);
    });
    ch.bind('pusher:subscription_error', (e: unknown) => {
      clearTimeout(t);
      reject(new Error(`subscription to ${name} failed: ${JSON.stringify(e)}`));
    });
  });
}

/** Closes the client and waits until pusher-js reports it disconnected. */
export async function disconnect(c: Client, ms = 5000): Promise<void> {
  c.p.disconnect();
  await eventually(() => c.p.connection.state === 'disconnected', { timeoutMs: ms, what: 'disconnected' });
}
