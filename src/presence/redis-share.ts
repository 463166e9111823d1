// What both Redis presence stores share (one Redis: redis.ts; Redis Cluster: redis-cluster.ts): this
// node's two local records of its share (`mine`, what its sockets hold now; `confirmed`, what Redis is
// known to hold), the gate that holds calls while the share is being written again, and the argument
// and reply shapes of the scripts. See redis.ts for how a Redis outage heals.
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { RedisKeys } from '../redis/keys.js';
import { StoreUnavailableError, type ClusterEvent, type ClusterStateHandler, type JoinResult, type PresenceJoin, type PresenceLeave, type PresenceMember, type TransitionRouter, type TransitionRoutes } from './store.js';

/** What the store needs of the node lease. */
export interface LeaseLink {
  readonly leaseMs: number;
  /** A change may not have reached Redis although the connection is up: write the share again soon. */
  rejoinSoon(): void;
}

export interface RedisPresenceOptions {
  redis: Redis;
  keys: RedisKeys;
  nodeId: string;
  log: Logger;
  lease: LeaseLink;
  routes: TransitionRouter;
}

export type Args = (string | number)[];

/** One node's share: sockets per channel, and presence sockets with their member. */
export class ShareRecord {
  /** "<app>\n<channel>" → sockets */
  readonly subs = new Map<string, number>();
  /** "<app>\n<channel>\n<socket>" → member (the online set's sockets are not counted in subs) */
  readonly presence = new Map<string, { userId: string; info: string }>();

  count(appId: string, channel: string, delta: 1 | -1): void {
    const field = `${appId}\n${channel}`;
    const n = (this.subs.get(field) ?? 0) + delta;
    if (n > 0) this.subs.set(field, n);
    else this.subs.delete(field);
  }

  join(appId: string, channel: string, socketId: string, userId: string, info: string, counted: boolean): void {
    const key = `${appId}\n${channel}\n${socketId}`;
    if (this.presence.has(key)) return;
    this.presence.set(key, { userId, info });
    if (counted) this.count(appId, channel, 1);
  }

  leave(appId: string, channel: string, socketId: string, counted: boolean): void {
    if (this.presence.delete(`${appId}\n${channel}\n${socketId}`) && counted) this.count(appId, channel, -1);
  }

  copy(): ShareRecord {
    const c = new ShareRecord();
    for (const [k, v] of this.subs) c.subs.set(k, v);
    for (const [k, v] of this.presence) c.presence.set(k, v);
    return c;
  }

  /** As script arguments (see redis-lua.ts). */
  args(): Args {
    const out: Args = [this.subs.size];
    for (const [field, n] of this.subs) out.push(...field.split('\n'), n);
    out.push(this.presence.size);
    for (const [key, m] of this.presence) out.push(...key.split('\n'), m.userId, m.info);
    return out;
  }
}

export function parseEvents(raw: unknown): ClusterEvent[] {
  return (raw as string[]).map((s) => {
    const f = s.split('\n');
    if (f[0] === 'a') return { kind: 'member_added' as const, appId: f[1], channel: f[2], userId: f[3], userInfo: JSON.parse(f.slice(4).join('\n')) ?? undefined };
    if (f[0] === 'm') return { kind: 'member_removed' as const, appId: f[1], channel: f[2], userId: f[3] };
    return { kind: 'count' as const, appId: f[1], channel: f[2], count: Number(f[3]) };
  });
}

export const NO_ROUTE: Args = [0, 0, 0, 0];

export function routeArgs(r: TransitionRoutes | undefined): Args {
  if (!r) return NO_ROUTE;
  return [r.occupied.length, ...r.occupied, r.vacated.length, ...r.vacated, r.added.length, ...r.added, r.removed.length, ...r.removed];
}

export const NO_QUEUES: ReadonlySet<string> = new Set();

/** The webhook queues a route names, each once (the script is given their streams), added to `into` if given. */
export function queuesOf(r: TransitionRoutes | undefined, into?: Set<string>): ReadonlySet<string> {
  if (!r) return into ?? NO_QUEUES;
  const out = into ?? new Set<string>();
  for (const list of [r.occupied, r.vacated, r.added, r.removed]) for (const q of list) out.add(q);
  return out;
}


/** A presence subscription's reply: { -1 } refused, else count after, added (0|1), flat members. */
export type SubscribeReply = [number] | [number, number, string[]];

/**
 * The share records, the gate, and each change's bookkeeping around what a subclass sends (its
 * `send*` methods, each called in the same step as `mine` records the change, and sending its first
 * command before it yields). From the moment the connection drops (and at start) calls wait at the
 * gate until this node's share is written again (`opened`), at most a lease.
 */
export abstract class RedisShareStore {
  readonly queuesTransitionWebhooks = true;
  protected readonly mine = new ShareRecord();
  protected confirmed = new ShareRecord();
  protected handler: ClusterStateHandler = { stateChanged: () => {} };
  /** Closed from the moment the connection drops (and at start) until this node's share is written again. */
  private gate?: { opened: Promise<void>; open: () => void };

  constructor(protected readonly o: RedisPresenceOptions) {
    this.closeGate();
    o.redis.on('close', () => this.closeGate());
  }

  start(handler: ClusterStateHandler): void {
    this.handler = handler;
  }

  /** False from the moment the connection drops until this node's share is written again. */
  get registered(): boolean {
    return !this.gate;
  }

  protected closeGate(): void {
    if (this.gate) return;
    let open!: () => void;
    const opened = new Promise<void>((r) => (open = r));
    this.gate = { opened, open };
  }

  protected openGate(): void {
    this.gate?.open();
    this.gate = undefined;
  }

  /**
   * Waits for the gate (again if it closed again meanwhile); false when Redis is unreachable now or
   * the gate stayed closed for a lease.
   */
  private async passGate(): Promise<boolean> {
    const deadline = Date.now() + this.o.lease.leaseMs;
    for (;;) {
      if (this.o.redis.status !== 'ready') return false;
      const gate = this.gate;
      if (!gate) return true;
      let timer: NodeJS.Timeout | undefined;
      const opened = await Promise.race([gate.opened.then(() => true), new Promise<false>((r) => (timer = setTimeout(() => r(false), Math.max(0, deadline - Date.now()))))]);
      clearTimeout(timer);
      if (!opened) return false;
    }
  }

  /**
   * One change of this node's share: `record` updates `mine` in the same step as the command is sent
   * (or as it is given up, since the socket did change), so a rejoin carries exactly what was sent.
   */
  protected async change<T>(record: () => void, send: () => Promise<T>): Promise<T> {
    if ((this.gate || this.o.redis.status !== 'ready') && !(await this.passGate())) {
      record();
      throw new StoreUnavailableError();
    }
    record();
    try {
      return await send();
    } catch (err) {
      // Not known to have reached Redis: the next rejoin writes the share as it is.
      this.o.lease.rejoinSoon();
      throw new StoreUnavailableError(`cluster state is unavailable: ${(err as Error).message}`);
    }
  }

  protected async read<T>(query: () => Promise<T>): Promise<T> {
    if ((this.gate || this.o.redis.status !== 'ready') && !(await this.passGate())) throw new StoreUnavailableError();
    try {
      return await query();
    } catch (err) {
      throw new StoreUnavailableError(`cluster state is unavailable: ${(err as Error).message}`);
    }
  }

  /** Sends one more (1) or one fewer (-1) socket of this node in app/channel; the count after. */
  protected abstract sendCount(appId: string, channel: string, delta: 1 | -1): Promise<unknown>;
  /** The online set's join: [added (0|1), flat members]. */
  protected abstract sendJoin(appId: string, channel: string, socketId: string, userId: string, info: string): Promise<unknown>;
  /** The online set's leave: 1 when it was the user's last socket. */
  protected abstract sendLeave(appId: string, channel: string, socketId: string, userId: string): Promise<unknown>;
  protected abstract sendSubscribePresence(appId: string, channel: string, socketId: string, userId: string, info: string, maxMembers: number): Promise<unknown>;
  /** [last (1|0, -1: not held), count after] */
  protected abstract sendUnsubscribePresence(appId: string, channel: string, socketId: string, userId: string): Promise<unknown>;

  /** A change of this node's share (change(), or a subclass's wrapper of it). */
  protected step<T>(record: () => void, send: () => Promise<T>): Promise<T> {
    return this.change(record, send);
  }

  async addSubscription(appId: string, channel: string): Promise<number> {
    const count = await this.step(
      () => this.mine.count(appId, channel, 1),
      () => this.sendCount(appId, channel, 1),
    );
    this.confirmed.count(appId, channel, 1);
    return Number(count);
  }

  async removeSubscription(appId: string, channel: string): Promise<number> {
    const count = await this.step(
      () => this.mine.count(appId, channel, -1),
      () => this.sendCount(appId, channel, -1),
    );
    this.confirmed.count(appId, channel, -1);
    return Number(count);
  }

  async joinPresence(appId: string, channel: string, socketId: string, member: PresenceMember): Promise<JoinResult> {
    const info = JSON.stringify(member.userInfo ?? null);
    const res = (await this.step(
      () => this.mine.join(appId, channel, socketId, member.userId, info, false),
      () => this.sendJoin(appId, channel, socketId, member.userId, info),
    )) as [number, string[]];
    this.confirmed.join(appId, channel, socketId, member.userId, info, false);
    return { added: Number(res[0]) === 1, members: toMembers(res[1]) };
  }

  async leavePresence(appId: string, channel: string, socketId: string, userId: string): Promise<boolean> {
    const last = await this.step(
      () => this.mine.leave(appId, channel, socketId, false),
      () => this.sendLeave(appId, channel, socketId, userId),
    );
    this.confirmed.leave(appId, channel, socketId, false);
    return Number(last) === 1;
  }

  async subscribePresence(appId: string, channel: string, socketId: string, member: PresenceMember, maxMembers: number): Promise<PresenceJoin> {
    const info = JSON.stringify(member.userInfo ?? null);
    let res: SubscribeReply;
    try {
      res = (await this.step(
        () => this.mine.join(appId, channel, socketId, member.userId, info, true),
        () => this.sendSubscribePresence(appId, channel, socketId, member.userId, info, maxMembers),
      )) as SubscribeReply;
    } catch (err) {
      // The join is refused to the client, so it is not part of this node's share.
      this.mine.leave(appId, channel, socketId, true);
      throw err;
    }
    if (res.length === 1 || Number(res[0]) < 0) {
      this.mine.leave(appId, channel, socketId, true);
      return { refused: true };
    }
    this.confirmed.join(appId, channel, socketId, member.userId, info, true);
    return { refused: false, count: Number(res[0]), added: Number(res[1]) === 1, members: toMembers(res[2]) };
  }

  async unsubscribePresence(appId: string, channel: string, socketId: string, userId: string): Promise<PresenceLeave> {
    const res = (await this.step(
      () => this.mine.leave(appId, channel, socketId, true),
      () => this.sendUnsubscribePresence(appId, channel, socketId, userId),
    )) as [number, number];
    const left = Number(res[0]);
    if (left >= 0) this.confirmed.leave(appId, channel, socketId, true);
    return { held: left >= 0, last: left === 1, count: Number(res[1]) };
  }

  async members(appId: string, channel: string): Promise<Map<string, unknown>> {
    return this.read(async () => toMembers(await this.o.redis.hgetall(this.o.keys.presence(appId, channel).infos)));
  }

  async userCount(appId: string, channel: string): Promise<number> {
    return this.read(() => this.o.redis.hlen(this.o.keys.presence(appId, channel).users));
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
