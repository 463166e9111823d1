// The relay's cluster transport: an app's console events on its Redis pub/sub channel
// (RedisKeys.console). Its two connections are opened only when this node first publishes or listens,
// so a cluster where nobody opens a console holds none. Publishing is fire and forget: while the
// connection is not ready (just opened, or Redis away) a bounded number of events wait for it, and
// beyond that they are dropped: a console event is not worth holding anything up for.
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { commandClient, subscriberClient, type RedisTarget } from '../redis/clients.js';
import type { RedisKeys } from '../redis/keys.js';
import type { RelayTransport } from './relay.js';

/** Events kept while the publishing connection is not ready. */
const MAX_WAITING = 1000;

export class RedisRelayTransport implements RelayTransport {
  private pub?: Redis;
  private sub?: Redis;
  private waiting: [string, string][] = [];
  /** Redis channel → where its events go */
  private readonly byChannel = new Map<string, (json: string) => void>();

  constructor(
    private readonly target: RedisTarget,
    private readonly keys: RedisKeys,
    private readonly name: string,
    private readonly log: Logger,
  ) {}

  publish(appId: string, json: string): void {
    if (!this.pub) {
      const pub = (this.pub = this.quiet(commandClient(this.target, `${this.name}-console`)));
      pub.on('ready', () => {
        const waiting = this.waiting;
        this.waiting = [];
        for (const [channel, message] of waiting) pub.publish(channel, message).catch(() => {});
      });
    }
    if (this.pub.status !== 'ready') {
      if (this.waiting.length < MAX_WAITING) this.waiting.push([this.keys.console(appId), json]);
      return;
    }
    this.pub.publish(this.keys.console(appId), json).catch(() => {});
  }

  async listen(appId: string, deliver: (json: string) => void): Promise<void> {
    if (!this.sub) {
      this.sub = this.quiet(subscriberClient(this.target, `${this.name}-console-sub`));
      this.sub.on('message', (channel: string, json: string) => this.byChannel.get(channel)?.(json));
    }
    const channel = this.keys.console(appId);
    this.byChannel.set(channel, deliver);
    await this.sub.subscribe(channel).catch((err) => this.log.debug({ err }, 'console relay subscribe deferred'));
  }

  unlisten(appId: string): void {
    const channel = this.keys.console(appId);
    this.byChannel.delete(channel);
    this.sub?.unsubscribe(channel).catch(() => {});
  }

  async close(): Promise<void> {
    await Promise.allSettled([this.pub?.quit(), this.sub?.quit()]);
  }

  /** Redis going away is logged by the engine's connections already. */
  private quiet(client: Redis): Redis {
    client.on('error', (err) => this.log.debug({ err }, 'console relay connection'));
    return client;
  }
}
