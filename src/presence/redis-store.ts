// Cluster-wide channel and presence state in Redis. Every node keeps its own share attributable to
// it (per-node keys) plus a local record of that share: a survivor removes a dead node's share when its
// lease expires, and a node replays its record whenever its connection to Redis comes back.
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import * as lua from './redis-lua.js';
import { StoreUnavailableError, type ChannelInfo, type JoinResult, type PresenceMember, type PresenceStore } from './store.js';

export type ClusterEvent =
  | { kind: 'member_removed'; appId: string; channel: string; userId: string }
  | { kind: 'channel_vacated'; appId: string; channel: string };

export interface RedisPresenceOptions {
  redis: Redis;
  prefix: string;
  nodeId: string;
  /** A node that has not renewed its lease for this long is dead (default 10 s). */
  leaseMs: number;
  log: Logger;
  /** Called with the member_removed/channel_vacated events due after a dead node's share was removed. */
  onOrphans: (events: ClusterEvent[]) => void;
}

type Scripted = Redis & Record<string, (...args: (string | number)[]) => Promise<unknown>>;

function parseEvents(raw: unknown): ClusterEvent[] {
  return (raw as string[]).map((s) => {
    const f = s.split('\n');
    return f[0] === 'm'
      ? { kind: 'member_removed' as const, appId: f[1], channel: f[2], userId: f[3] }
      : { kind: 'channel_vacated' as const, appId: f[1], channel: f[2] };
  });
}

export class RedisPresenceStore implements PresenceStore {
  private readonly r: Scripted;
  private readonly P: string;
  /** this node's sockets per "<app>\n<channel>" */
  private mineSubs = new Map<string, number>();
  /** this node's presence sockets: "<app>\n<channel>\n<socket>" → member */
  private minePresence = new Map<string, { userId: string; info: string }>();
  private timer: NodeJS.Timeout;
  private closed = false;

  constructor(private readonly o: RedisPresenceOptions) {
    this.P = o.prefix;
    this.r = o.redis as Scripted;
    for (const [name, script] of Object.entries({
      rAddSub: lua.addSubscription,
      rRemoveSub: lua.removeSubscription,
      rJoin: lua.joinPresence,
      rSubPres: lua.subscribePresence,
      rUnsubPres: lua.unsubscribePresence,
      rLeave: lua.leavePresence,
      rDropExpired: lua.dropExpiredNode,
      rDropSelf: lua.dropSelf,
      rReplay: lua.replayShare,
    })) {
      o.redis.defineCommand(name, { numberOfKeys: 0, lua: script });
    }
    // Every (re)connect: put this node's share back as it is now (Redis may have restarted empty,
    // or another node may have removed the share while this one was cut off).
    o.redis.on('ready', () => void this.replay());
    if (o.redis.status === 'ready') void this.replay();
    this.timer = setInterval(() => void this.tick(), Math.max(100, Math.floor(o.leaseMs / 4)));
    this.timer.unref();
  }

  private async replay(): Promise<void> {
    if (this.closed) return;
    const args: (string | number)[] = [this.P, this.o.nodeId, Date.now() + this.o.leaseMs, this.mineSubs.size];
    for (const [field, n] of this.mineSubs) {
      const [app, channel] = field.split('\n');
      args.push(app, channel, n);
    }
    for (const [key, m] of this.minePresence) {
      const [app, channel, socket] = key.split('\n');
      args.push(app, channel, socket, m.userId, m.info);
    }
    try {
      await this.r.rReplay(...args);
      this.o.log.info({ subscriptions: this.mineSubs.size, presence: this.minePresence.size }, 'cluster state registered');
    } catch (err) {
      this.o.log.warn({ err }, 'cluster state not registered yet');
    }
  }

  /** Renews this node's lease and removes the share of nodes whose lease expired. */
  private async tick(): Promise<void> {
    if (this.closed || this.o.redis.status !== 'ready') return;
    const now = Date.now();
    try {
      const added = await this.o.redis.zadd(`${this.P}:nodes`, now + this.o.leaseMs, this.o.nodeId);
      // Our entry was gone: another node took us for dead (we were cut off or stalled). Re-register.
      if (Number(added) === 1) await this.replay();
      const expired = await this.o.redis.zrangebyscore(`${this.P}:nodes`, '-inf', now);
      for (const node of expired) {
        if (node === this.o.nodeId) continue;
        const events = parseEvents(await this.r.rDropExpired(this.P, node, now));
        if (!events.length) continue;
        this.o.log.info({ node, events: events.length }, 'removed the state of a dead node');
        this.o.onOrphans(events);
      }
    } catch (err) {
      this.o.log.warn({ err }, 'lease renewal failed');
    }
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
    // A join while Redis is unreachable is refused (the client gets a subscription_error and retries
    // on its next connection) rather than answered with a member list this node cannot know.
    const res = (await this.call(() => this.r.rJoin(this.P, this.o.nodeId, appId, channel, socketId, member.userId, info))) as [number, string[]];
    this.minePresence.set(`${appId}\n${channel}\n${socketId}`, { userId: member.userId, info });
    return { added: Number(res[0]) === 1, members: toMembers(res[1]) };
  }

  async leavePresence(appId: string, channel: string, socketId: string, userId: string): Promise<boolean> {
    this.minePresence.delete(`${appId}\n${channel}\n${socketId}`);
    return this.call(async () => Number(await this.r.rLeave(this.P, this.o.nodeId, appId, channel, socketId, userId)) === 1);
  }

  async subscribePresence(appId: string, channel: string, socketId: string, member: PresenceMember): Promise<JoinResult & { count: number }> {
    const info = JSON.stringify(member.userInfo ?? null);
    // Mirror first: a reconnect replays it, and an undo after a failure removes it again.
    this.mirrorSub(appId, channel, 1);
    this.minePresence.set(`${appId}\n${channel}\n${socketId}`, { userId: member.userId, info });
    const res = (await this.call(() => this.r.rSubPres(this.P, this.o.nodeId, appId, channel, socketId, member.userId, info))) as [number, number, string[]];
    return { count: Number(res[0]), added: Number(res[1]) === 1, members: toMembers(res[2]) };
  }

  async unsubscribePresence(appId: string, channel: string, socketId: string, userId: string): Promise<{ last: boolean; count: number }> {
    this.mirrorSub(appId, channel, -1);
    this.minePresence.delete(`${appId}\n${channel}\n${socketId}`);
    const res = (await this.call(() => this.r.rUnsubPres(this.P, this.o.nodeId, appId, channel, socketId, userId))) as [number, number];
    return { last: Number(res[0]) === 1, count: Number(res[1]) };
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
      const presence = names.filter((c) => c.startsWith('presence-'));
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

  /** Leaves the cluster: removes this node's share and returns the events that became due. */
  async leaveCluster(): Promise<ClusterEvent[]> {
    this.closed = true;
    clearInterval(this.timer);
    try {
      return parseEvents(await this.r.rDropSelf(this.P, this.o.nodeId));
    } catch (err) {
      this.o.log.warn({ err }, 'could not remove this node from the cluster state; its lease will expire');
      return [];
    }
  }

  async close(): Promise<void> {
    if (!this.closed) await this.leaveCluster();
  }
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
