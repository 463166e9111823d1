// Cluster-wide channel and presence state in Redis. Every node keeps its own share attributable to
// it (per-node keys) plus a local record of that share: the node lease removes a dead node's share
// (dropNode) and has a node write its record again whenever its registration may have been lost
// (rejoin).
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { NodeShare } from '../cluster/node-lease.js';
import { defineScripts, type Scripted } from '../redis/clients.js';
import { channelKind } from '../protocol/channels.js';
import * as lua from './redis-lua.js';
import {
  StoreUnavailableError,
  type ChannelInfo,
  type ClusterEvent,
  type ClusterStateHandler,
  type JoinResult,
  type PresenceJoin,
  type PresenceLeave,
  type PresenceMember,
  type PresenceStore,
} from './store.js';

export interface RedisPresenceOptions {
  redis: Redis;
  prefix: string;
  nodeId: string;
  log: Logger;
}

function parseEvents(raw: unknown): ClusterEvent[] {
  return (raw as string[]).map((s) => {
    const f = s.split('\n');
    return f[0] === 'm'
      ? { kind: 'member_removed' as const, appId: f[1], channel: f[2], userId: f[3] }
      : { kind: 'count' as const, appId: f[1], channel: f[2], count: Number(f[3]) };
  });
}

const presenceKey = (appId: string, channel: string, socketId: string) => `${appId}\n${channel}\n${socketId}`;

export class RedisPresenceStore implements PresenceStore, NodeShare {
  private readonly r: Scripted;
  private readonly P: string;
  /** this node's sockets per "<app>\n<channel>" */
  private mineSubs = new Map<string, number>();
  /** this node's presence sockets: "<app>\n<channel>\n<socket>" → member */
  private minePresence = new Map<string, { userId: string; info: string }>();
  private handler: ClusterStateHandler = { nodeStateRemoved: () => {} };

  constructor(private readonly o: RedisPresenceOptions) {
    this.P = o.prefix;
    this.r = defineScripts(o.redis, {
      rAddSub: lua.addSubscription,
      rRemoveSub: lua.removeSubscription,
      rJoin: lua.joinPresence,
      rSubPres: lua.subscribePresence,
      rUnsubPres: lua.unsubscribePresence,
      rLeave: lua.leavePresence,
      rDropNode: lua.dropNode,
      rReplay: lua.replayShare,
    });
  }

  start(handler: ClusterStateHandler): void {
    this.handler = handler;
  }

  async rejoin(): Promise<void> {
    const args: (string | number)[] = [this.P, this.o.nodeId, this.mineSubs.size];
    for (const [field, n] of this.mineSubs) {
      const [app, channel] = field.split('\n');
      args.push(app, channel, n);
    }
    for (const [key, m] of this.minePresence) {
      const [app, channel, socket] = key.split('\n');
      args.push(app, channel, socket, m.userId, m.info);
    }
    await this.r.rReplay(...args);
    this.o.log.info({ subscriptions: this.mineSubs.size, presence: this.minePresence.size }, 'cluster state registered');
  }

  async dropNode(node: string, now: number): Promise<void> {
    const events = parseEvents(await this.r.rDropNode(this.P, node, now));
    if (events.length) this.handler.nodeStateRemoved(events);
  }

  private async call<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw new StoreUnavailableError(`cluster state is unavailable: ${(err as Error).message}`);
    }
  }

  /** This node's own share, mirrored locally so a reconnect can replay it. */
  private mirrorSub(appId: string, channel: string, delta: 1 | -1): void {
    const field = `${appId}\n${channel}`;
    const n = (this.mineSubs.get(field) ?? 0) + delta;
    if (n > 0) this.mineSubs.set(field, n);
    else this.mineSubs.delete(field);
  }

  /** Forgets a presence socket of the mirror (and its count) if the mirror still holds it. */
  private unmirrorPresence(appId: string, channel: string, socketId: string): void {
    if (this.minePresence.delete(presenceKey(appId, channel, socketId))) this.mirrorSub(appId, channel, -1);
  }

  async addSubscription(appId: string, channel: string): Promise<number> {
    this.mirrorSub(appId, channel, 1);
    return this.call(async () => Number(await this.r.rAddSub(this.P, this.o.nodeId, appId, channel)));
  }

  async removeSubscription(appId: string, channel: string): Promise<number> {
    this.mirrorSub(appId, channel, -1);
    return this.call(async () => Number(await this.r.rRemoveSub(this.P, this.o.nodeId, appId, channel)));
  }

  async joinPresence(appId: string, channel: string, socketId: string, member: PresenceMember): Promise<JoinResult> {
    const info = JSON.stringify(member.userInfo ?? null);
    const res = (await this.call(() => this.r.rJoin(this.P, this.o.nodeId, appId, channel, socketId, member.userId, info))) as [number, string[]];
    this.minePresence.set(presenceKey(appId, channel, socketId), { userId: member.userId, info });
    return { added: Number(res[0]) === 1, members: toMembers(res[1]) };
  }

  async leavePresence(appId: string, channel: string, socketId: string, userId: string): Promise<boolean> {
    this.minePresence.delete(presenceKey(appId, channel, socketId));
    return this.call(async () => Number(await this.r.rLeave(this.P, this.o.nodeId, appId, channel, socketId, userId)) === 1);
  }

  async subscribePresence(appId: string, channel: string, socketId: string, member: PresenceMember, maxMembers: number): Promise<PresenceJoin> {
    const info = JSON.stringify(member.userInfo ?? null);
    // Mirror first: a reconnect while the call is in flight replays it.
    this.mirrorSub(appId, channel, 1);
    this.minePresence.set(presenceKey(appId, channel, socketId), { userId: member.userId, info });
    let res: [number, number, string[]];
    try {
      res = (await this.call(() => this.r.rSubPres(this.P, this.o.nodeId, appId, channel, socketId, member.userId, info, maxMembers))) as typeof res;
    } catch (err) {
      // Not recorded (no offline queue: the command was not sent, or a reconnect replays the mirror).
      this.unmirrorPresence(appId, channel, socketId);
      throw err;
    }
    if (Number(res[0]) < 0) {
      this.unmirrorPresence(appId, channel, socketId);
      return { refused: true };
    }
    return { refused: false, count: Number(res[0]), added: Number(res[1]) === 1, members: toMembers(res[2]) };
  }

  async unsubscribePresence(appId: string, channel: string, socketId: string, userId: string): Promise<PresenceLeave> {
    this.unmirrorPresence(appId, channel, socketId);
    const res = (await this.call(() => this.r.rUnsubPres(this.P, this.o.nodeId, appId, channel, socketId, userId))) as [number, number];
    const left = Number(res[0]);
    return { held: left >= 0, last: left === 1, count: Number(res[1]) };
  }

  async members(appId: string, channel: string): Promise<Map<string, unknown>> {
    return this.call(async () => toMembers(await this.o.redis.hgetall(`${this.P}:p:${appId}:${channel}:i`)));
  }

  async userCount(appId: string, channel: string): Promise<number> {
    return this.call(() => this.o.redis.hlen(`${this.P}:p:${appId}:${channel}:u`));
  }

  async subscriptionCount(appId: string, channel: string): Promise<number> {
    return this.call(async () => Number((await this.o.redis.hget(`${this.P}:subs:${appId}`, channel)) ?? 0));
  }

  async channels(appId: string, prefix?: string): Promise<Map<string, ChannelInfo>> {
    return this.call(async () => {
      const all = await this.o.redis.hgetall(`${this.P}:subs:${appId}`);
      const names = Object.keys(all).filter((c) => !prefix || c.startsWith(prefix));
      const presence = names.filter((c) => channelKind(c) === 'presence');
      const counts = new Map<string, number>();
      if (presence.length) {
        const pipe = this.o.redis.pipeline();
        for (const c of presence) pipe.hlen(`${this.P}:p:${appId}:${c}:u`);
        const res = (await pipe.exec()) ?? [];
        presence.forEach((c, i) => counts.set(c, Number(res[i]?.[1] ?? 0)));
      }
      const out = new Map<string, ChannelInfo>();
      for (const c of names) out.set(c, { subscriptionCount: Number(all[c]), userCount: counts.get(c) ?? 0 });
      return out;
    });
  }

  async close(): Promise<void> {}
}

function toMembers(flat: string[] | Record<string, string>): Map<string, unknown> {
  const m = new Map<string, unknown>();
  if (Array.isArray(flat)) {
    for (let i = 0; i < flat.length; i += 2) m.set(flat[i], JSON.parse(flat[i + 1]) ?? undefined);
  } else {
    for (const [k, v] of Object.entries(flat)) m.set(k, JSON.parse(v) ?? undefined);
  }
  return m;
}
