// Cluster fan-out over Redis pub/sub with interest-based routing: a node SUBSCRIBEs only to the
// channels it has local subscribers for, so it receives no traffic of other channels. The publishing
// node delivers to its own sockets itself and ignores its own message coming back.
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { Backbone, BackboneHandlers, NodeCommand } from './backbone.js';

export interface RedisBackboneOptions {
  pub: Redis;
  sub: Redis;
  prefix: string;
  nodeId: string;
  log: Logger;
}

export class RedisBackbone implements Backbone {
  private handlers: BackboneHandlers = { frames: { deliver() {} }, commands: { command() {} } };
  /** Redis channel → app/channel this node has interest in */
  private interests = new Map<string, { appId: string; channel: string }>();
  private readonly commandChannel: string;
  /** Frames that arrived from other nodes (metrics; the interest-routing test reads it). */
  received = 0;

  constructor(private readonly o: RedisBackboneOptions) {
    this.commandChannel = `${o.prefix}:cmd`;
  }

  private redisChannel(appId: string, channel: string): string {
    return `${this.o.prefix}:ch:${appId}:${channel}`;
  }

  async start(handlers: BackboneHandlers): Promise<void> {
    this.handlers = handlers;
    this.o.sub.on('message', (redisChannel: string, message: string) => this.receive(redisChannel, message));
    await this.o.sub.subscribe(this.commandChannel).catch((err) => this.o.log.warn({ err }, 'command channel subscribe deferred'));
  }

  private receive(redisChannel: string, message: string): void {
    // message = origin node id \n except socket id \n payload
    const a = message.indexOf('\n');
    const b = message.indexOf('\n', a + 1);
    if (a < 0 || b < 0) return;
    if (message.slice(0, a) === this.o.nodeId) return;
    const payload = message.slice(b + 1);
    if (redisChannel === this.commandChannel) {
      try {
        this.handlers.commands.command(JSON.parse(payload) as NodeCommand);
      } catch (err) {
        this.o.log.warn({ err }, 'bad node command');
      }
      return;
    }
    const target = this.interests.get(redisChannel);
    if (!target) return;
    this.received++;
    const except = message.slice(a + 1, b);
    this.handlers.frames.deliver(target.appId, target.channel, payload, except || undefined);
  }

  publish(appId: string, channel: string, frame: string, exceptSocketId?: string): void {
    this.handlers.frames.deliver(appId, channel, frame, exceptSocketId);
    this.o.pub
      .publish(this.redisChannel(appId, channel), `${this.o.nodeId}\n${exceptSocketId ?? ''}\n${frame}`)
      .catch(() => {}); // Redis down: local subscribers were served; other nodes cannot be reached now
  }

  addInterest(appId: string, channel: string): void {
    const rc = this.redisChannel(appId, channel);
    this.interests.set(rc, { appId, channel });
    this.o.sub.subscribe(rc).catch(() => {}); // re-sent by autoResubscribe after a reconnect
  }

  removeInterest(appId: string, channel: string): void {
    const rc = this.redisChannel(appId, channel);
    this.interests.delete(rc);
    this.o.sub.unsubscribe(rc).catch(() => {});
  }

  broadcastCommand(cmd: NodeCommand): void {
    this.handlers.commands.command(cmd);
    this.o.pub.publish(this.commandChannel, `${this.o.nodeId}\n\n${JSON.stringify(cmd)}`).catch((err) =>
      this.o.log.warn({ err }, 'node command not broadcast'),
    );
  }

  isHealthy(): boolean {
    return this.o.pub.status === 'ready' && this.o.sub.status === 'ready';
  }

  async close(): Promise<void> {
    this.o.sub.disconnect();
  }
}
