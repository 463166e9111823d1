// Cluster fan-out over Redis pub/sub with interest-based routing: a node SUBSCRIBEs only to the
// channels it has local subscribers for, so it receives no traffic of other channels. The publishing
// node delivers to its own sockets itself and ignores its own message coming back.
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { EPOCH_KEEP_MS, newEpoch, type HistoryPolicy } from '../history/history.js';
import { historyKey } from '../history/redis.js';
import { recordEvent } from '../history/redis-lua.js';
import { defineScripts, type Scripted } from '../redis/clients.js';
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
  private interests = new Map<string, { appId: string; channel: string; subscribed: Promise<void> }>();
  private readonly pubScripts: Scripted;
  private readonly commandChannel: string;
  /** Frames that arrived from other nodes (metrics; the interest-routing test reads it). */
  received = 0;

  constructor(private readonly o: RedisBackboneOptions) {
    this.commandChannel = `${o.prefix}:cmd`;
    this.pubScripts = defineScripts(o.pub, { historyRecord: recordEvent });
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
    // message = origin node id \n except socket id \n payload, where a recorded event's payload is
    // r<epoch>:<serial> \n frame: those come back to their origin too (it delivers them only now).
    const a = message.indexOf('\n');
    const b = message.indexOf('\n', a + 1);
    if (a < 0 || b < 0) return;
    const recorded = message.charCodeAt(b + 1) === 114; // 'r'
    if (!recorded && message.slice(0, a) === this.o.nodeId) return;
    let payload = message.slice(b + 1);
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
    let position: string | undefined;
    if (recorded) {
      const nl = payload.indexOf('\n');
      position = payload.slice(1, nl);
      payload = payload.slice(nl + 1);
    }
    this.handlers.frames.deliver(target.appId, target.channel, payload, except || undefined, position);
  }

  publishRecorded(appId: string, channel: string, frame: string, policy: HistoryPolicy, exceptSocketId?: string): void {
    // Numbered, kept and published in one script; every node (this one too) delivers it on receipt.
    this.pubScripts
      .historyRecord(
        historyKey(this.o.prefix, appId, channel),
        newEpoch(),
        policy.size,
        policy.ttlMs,
        EPOCH_KEEP_MS,
        frame,
        exceptSocketId ?? '',
        this.redisChannel(appId, channel),
        `${this.o.nodeId}\n${exceptSocketId ?? ''}\n`,
      )
      .catch((err) => this.o.log.warn({ err, app: appId, channel }, 'recorded event not published'));
  }

  publish(appId: string, channel: string, frame: string, exceptSocketId?: string): void {
    this.handlers.frames.deliver(appId, channel, frame, exceptSocketId);
    this.o.pub
      .publish(this.redisChannel(appId, channel), `${this.o.nodeId}\n${exceptSocketId ?? ''}\n${frame}`)
      .catch(() => {}); // Redis down: local subscribers were served; other nodes cannot be reached now
  }

  addInterest(appId: string, channel: string): void {
    const rc = this.redisChannel(appId, channel);
    // A failed subscribe is re-sent by autoResubscribe after a reconnect.
    const subscribed = this.o.sub.subscribe(rc).then(() => {}, () => {});
    this.interests.set(rc, { appId, channel, subscribed });
  }

  interestReady(appId: string, channel: string): Promise<void> {
    return this.interests.get(this.redisChannel(appId, channel))?.subscribed ?? Promise.resolve();
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
