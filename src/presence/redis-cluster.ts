// Cluster-wide channel and presence state on Redis Cluster (docs/redis-cluster.md): each channel's
// counts, members and pending transitions in the channel's own slot, so the churn of every channel is
// spread over the shards; this node's share and each app's index of occupied channels in the state
// slot. Chosen by the engine when the keyspace is in cluster mode; one Redis keeps redis.ts.
//
// What one step of one Redis did atomically is here several single-slot steps, in an order that keeps
// what matters (the scripts: redis-cluster-lua.ts):
//  - A channel's change (count, members, the member limit, its transitions) is one script in the
//    channel's slot: two nodes racing on one channel are ordered there, as on one Redis.
//  - Its webhooks go to the channel's pending list in that same script, numbered; any node moves them
//    to the streams (state slot) in number order, each once (moveWebhooks keeps the last number moved
//    per channel). One channel's webhooks keep their order; two channels' webhooks may be queued in
//    another order than they happened (on one Redis they were not).
//  - This node's share (state slot) is written with a channel step that adds (sent together: one round
//    trip; a failed share write has the node rejoin, which writes the share from its own record) and
//    after one that removes (and after its webhooks moved), so it names every channel where Redis may
//    hold this node's sockets or unmoved transitions: a survivor that removes a dead node's part
//    channel by channel (setNodePart, idempotent), moves their webhooks, then deletes the share, misses
//    none. (The one gap: the node dying at the moment its state shard loses that share write.)
//  - A rejoin closes the gate and waits for the changes in flight, so the share it writes channel by
//    channel is exactly what was sent before it, as one script was on one Redis.
// What is not kept: a node taken for dead while alive (its lease ran out, e.g. a long pause) whose
// rejoin runs while a survivor is removing its part channel by channel can lose that channel's part
// until its next rejoin (on one Redis the lease check and the removal were one step).
import type { NodeShare } from '../cluster/node-lease.js';
import { ONLINE_CHANNEL, channelKind } from '../protocol/channels.js';
import { defineScripts, type Scripted } from '../redis/clients.js';
import type { ChannelStateKeys } from '../redis/keys.js';
import * as lua from './redis-cluster-lua.js';
import { RedisShareStore, ShareRecord, parseEvents, routeArgs, type Args, type RedisPresenceOptions } from './redis-share.js';
import type { ChannelInfo, ClusterEvent, PresenceStore } from './store.js';

/** How many channels a whole-share step (rejoin, restore, a dead node's removal) sets at once. */
const SHARE_STEP_PARALLEL = 32;
/** A failed move of a channel's webhooks is tried again after this (they wait in the channel's pending list). */
const MOVE_RETRY_MS = 500;

/** "<app>\n<channel>" → [app, channel] */
function splitField(field: string): [string, string] {
  const i = field.indexOf('\n');
  return [field.slice(0, i), field.slice(i + 1)];
}

export class RedisClusterPresenceStore extends RedisShareStore implements PresenceStore, NodeShare {
  private readonly r: Scripted;
  private readonly nodeSubs: string;
  private readonly nodePres: string;
  /** changes sent and not answered yet: a rejoin waits for them */
  private readonly inflight = new Set<Promise<void>>();
  /** per channel ("<app>\n<channel>"): the move running, and the one that follows it when asked meanwhile */
  private readonly moves = new Map<string, { running: Promise<void>; next?: Promise<void> }>();
  /** channels ("<app>\n<channel>") whose pending webhooks could not be moved yet */
  private readonly unmoved = new Set<string>();
  private retry?: NodeJS.Timeout;

  constructor(o: RedisPresenceOptions) {
    super(o);
    this.nodeSubs = o.keys.nodeSubscriptions(o.nodeId);
    this.nodePres = o.keys.nodePresence(o.nodeId);
    this.r = defineScripts(o.redis, {
      cAddSub: lua.addSubscription,
      cRemoveSub: lua.removeSubscription,
      cJoin: lua.joinPresence,
      cLeave: lua.leavePresence,
      cSubPres: lua.subscribePresence,
      cUnsubPres: lua.unsubscribePresence,
      cSetPart: lua.setNodePart,
      cTrim: lua.trimPending,
      cMove: lua.moveWebhooks,
      cShare: lua.shareChange,
      cShareWrite: lua.shareWrite,
      cShareChannels: lua.shareChannels,
      cShareDrop: lua.shareDrop,
    });
  }

  /** A channel script: its seven keys, then now node app channel and its own arguments. */
  private channelStep(script: string, node: string, appId: string, channel: string, args: Args): Promise<unknown> {
    const k: ChannelStateKeys = this.o.keys.channelState(appId, channel);
    return this.r[script](k.count, k.nodes, k.sockets, k.users, k.infos, k.pending, k.seq, Date.now(), node, appId, channel, ...args);
  }

  private route(appId: string, channel: string): Args {
    return routeArgs(channel === ONLINE_CHANNEL ? undefined : this.o.routes.routes(appId, channel));
  }

  /** This node's share: its sockets in app/channel changed by d, a presence socket added (+) or removed (-). */
  private share(appId: string, channel: string, d: number, op: '' | '+' | '-' = '', socketId = '', userId = ''): Promise<unknown> {
    const member = op ? `${appId}\n${channel}\n${socketId}\n${userId}` : '';
    return this.r.cShare(this.nodeSubs, this.nodePres, this.o.keys.statePrefix, appId, channel, d, op, member);
  }

  /**
   * Moves a channel's pending transitions to the webhook streams (see moveWebhooks), then drops them
   * from the pending list. Repeating it, or another node doing it at the same time, moves nothing twice.
   */
  private async move(appId: string, channel: string): Promise<void> {
    const k = this.o.keys;
    const pending = k.channelState(appId, channel).pending;
    const entries = await this.o.redis.lrange(pending, 0, -1);
    if (!entries.length) return;
    const queues = new Set<string>();
    for (const e of entries) {
      const f = e.split('\n');
      for (let j = 0; j < Number(f[1]); j++) queues.add(f[2 + j]);
    }
    const streams = [...queues].map((q) => k.webhookStream(q));
    const last = await this.r.cMove(1 + streams.length, k.webhookMoved(appId, channel), ...streams, k.webhookBell, queues.size, ...queues, ...entries);
    await this.r.cTrim(pending, String(last));
  }

  /** Moves a channel's webhooks; on failure they wait in its pending list and are tried again shortly. */
  private async moveOrRetry(appId: string, channel: string): Promise<void> {
    try {
      await this.move(appId, channel);
    } catch (err) {
      this.o.log.debug({ err, appId, channel }, 'webhooks of a channel not moved to the queues yet');
      this.unmoved.add(`${appId}\n${channel}`);
      if (!this.retry) {
        this.retry = setTimeout(() => {
          this.retry = undefined;
          const fields = [...this.unmoved];
          this.unmoved.clear();
          for (const f of fields) void this.moveOrRetry(...splitField(f));
        }, MOVE_RETRY_MS);
        this.retry.unref();
      }
    }
  }

  /**
   * Moves a channel's webhooks once at a time on this node: asked while a move runs (which may have
   * read the list before the caller's entries), one more follows it for every caller meanwhile.
   */
  private moveSoon(appId: string, channel: string): Promise<void> {
    const f = `${appId}\n${channel}`;
    const m = this.moves.get(f);
    if (m) return (m.next ??= m.running.then(() => this.moveSoon(appId, channel)));
    const state: { running: Promise<void>; next?: Promise<void> } = { running: Promise.resolve() };
    state.running = this.moveOrRetry(appId, channel).finally(() => {
      if (this.moves.get(f) === state) this.moves.delete(f);
    });
    this.moves.set(f, state);
    return state.running;
  }

  /** change(), which a rejoin waits for from the moment it records the change until Redis answered. */
  protected override step<T>(record: () => void, send: () => Promise<T>): Promise<T> {
    let done!: () => void;
    const settled = new Promise<void>((r) => (done = r));
    const p = this.change(() => {
      record();
      this.inflight.add(settled);
    }, send);
    void p.then(done, done).then(() => this.inflight.delete(settled));
    return p;
  }

  /** Runs `step` for each channel, SHARE_STEP_PARALLEL at a time; the results in the channels' order. */
  private async eachChannel<T>(fields: string[], step: (appId: string, channel: string) => Promise<T>): Promise<T[]> {
    const out: T[] = new Array(fields.length);
    let next = 0;
    const worker = async () => {
      while (next < fields.length) {
        const i = next++;
        out[i] = await step(...splitField(fields[i]));
      }
    };
    await Promise.all(Array.from({ length: Math.min(SHARE_STEP_PARALLEL, fields.length) }, worker));
    return out;
  }

  /** Sets `node`'s part of each channel to what `share` holds there; the due events, channel by channel. */
  private async setParts(node: string, fields: string[], share: ShareRecord, silent: boolean): Promise<ClusterEvent[]> {
    const byChannel = new Map<string, Args>();
    for (const [key, m] of share.presence) {
      const [appId, channel, socketId] = key.split('\n');
      const field = `${appId}\n${channel}`;
      let list = byChannel.get(field);
      if (!list) byChannel.set(field, (list = []));
      list.push(socketId, m.userId, m.info);
    }
    const results = await this.eachChannel(fields, async (appId, channel) => {
      const field = `${appId}\n${channel}`;
      const pres = byChannel.get(field) ?? [];
      const res = (await this.channelStep('cSetPart', node, appId, channel, [silent ? 1 : 0, share.subs.get(field) ?? 0, pres.length / 3, ...pres, ...this.route(appId, channel)])) as [number, ...string[]];
      // Moved before the share goes: a failure fails the whole step (a dead node's share stays for the next try).
      if (Number(res[0]) > 0) await this.move(appId, channel);
      return parseEvents(res.slice(1));
    });
    return results.flat();
  }

  /** The channels ("<app>\n<channel>") of a share. */
  private static fields(share: ShareRecord, into = new Set<string>()): Set<string> {
    for (const f of share.subs.keys()) into.add(f);
    for (const key of share.presence.keys()) into.add(key.split('\n', 2).join('\n'));
    return into;
  }

  async rejoin(): Promise<void> {
    // The share is written channel by channel: no change of this node may run in between.
    this.closeGate();
    await Promise.all([...this.inflight]);
    const share = this.mine.copy();
    const [subs, pres] = await Promise.all([this.o.redis.hkeys(this.nodeSubs), this.o.redis.smembers(this.nodePres)]);
    const fields = RedisClusterPresenceStore.fields(share, new Set(subs));
    for (const m of pres) fields.add(m.split('\n', 2).join('\n'));
    // First the union (the share names every channel touched), then each channel, then exactly the share.
    await this.r.cShareWrite(this.nodeSubs, this.nodePres, this.o.keys.statePrefix, 0, ...share.args());
    const events = await this.setParts(this.o.nodeId, [...fields], share, false);
    await this.r.cShareWrite(this.nodeSubs, this.nodePres, this.o.keys.statePrefix, 1, ...share.args());
    this.confirmed = share;
    this.openGate();
    this.o.log.info({ subscriptions: share.subs.size, presence: share.presence.size, changes: events.length }, 'cluster state registered');
    if (events.length) this.handler.stateChanged(events);
  }

  async restore(): Promise<void> {
    const share = this.confirmed;
    await this.r.cShareWrite(this.nodeSubs, this.nodePres, this.o.keys.statePrefix, 1, ...share.args());
    await this.setParts(this.o.nodeId, [...RedisClusterPresenceStore.fields(share)], share, true);
    this.o.log.info({ subscriptions: share.subs.size, presence: share.presence.size }, 'cluster state restored after Redis lost it');
  }

  async dropNode(node: string, now: number): Promise<void> {
    const k = this.o.keys;
    const shareKeys = [k.nodes, k.nodeSubscriptions(node), k.nodePresence(node)];
    const fields = (await this.r.cShareChannels(...shareKeys, node, now)) as string[];
    const events = fields.length ? await this.setParts(node, fields, new ShareRecord(), false) : [];
    await this.r.cShareDrop(...shareKeys, k.statePrefix, node, now);
    if (events.length) this.handler.stateChanged(events);
  }

  protected async sendCount(appId: string, channel: string, delta: 1 | -1): Promise<unknown> {
    // The share with the channel step when adding, after it when removing (after the webhooks moved): see the header.
    const shared = delta > 0 ? this.share(appId, channel, 1) : undefined;
    const [[n, queued]] = (await Promise.all([this.channelStep(delta > 0 ? 'cAddSub' : 'cRemoveSub', this.o.nodeId, appId, channel, this.route(appId, channel)), shared])) as [[number, number], unknown];
    await this.moved(appId, channel, queued, delta < 0);
    if (delta < 0) await this.share(appId, channel, -1);
    return n;
  }

  protected async sendJoin(appId: string, channel: string, socketId: string, userId: string, info: string): Promise<unknown> {
    const shared = this.share(appId, channel, 0, '+', socketId, userId);
    return (await Promise.all([this.channelStep('cJoin', this.o.nodeId, appId, channel, [socketId, userId, info]), shared]))[0];
  }

  protected async sendLeave(appId: string, channel: string, socketId: string, userId: string): Promise<unknown> {
    const last = await this.channelStep('cLeave', this.o.nodeId, appId, channel, [socketId, userId]);
    await this.share(appId, channel, 0, '-', socketId, userId);
    return last;
  }

  protected async sendSubscribePresence(appId: string, channel: string, socketId: string, userId: string, info: string, maxMembers: number): Promise<unknown> {
    const shared = this.share(appId, channel, 1, '+', socketId, userId);
    const [res] = (await Promise.all([this.channelStep('cSubPres', this.o.nodeId, appId, channel, [socketId, userId, info, maxMembers, ...this.route(appId, channel)]), shared])) as [
      [number, number?, string[]?, number?],
      unknown,
    ];
    // Refused: nothing recorded in the channel, so none in the share either.
    if (Number(res[0]) < 0) await this.share(appId, channel, -1, '-', socketId, userId);
    else await this.moved(appId, channel, res[3] ?? 0, false);
    return res.slice(0, 3);
  }

  protected async sendUnsubscribePresence(appId: string, channel: string, socketId: string, userId: string): Promise<unknown> {
    const [last, count, queued] = (await this.channelStep('cUnsubPres', this.o.nodeId, appId, channel, [socketId, userId, ...this.route(appId, channel)])) as [number, number, number];
    await this.moved(appId, channel, queued, true);
    await this.share(appId, channel, Number(last) >= 0 ? -1 : 0, '-', socketId, userId);
    return [last, count];
  }

  /**
   * After a channel step that queued transitions: moves them now, awaited when the share is about to
   * drop the channel (until they moved, the share must name it), else in the background.
   */
  private async moved(appId: string, channel: string, queued: number, wait: boolean): Promise<void> {
    if (Number(queued) <= 0) return;
    if (wait) await this.moveSoon(appId, channel);
    else void this.moveSoon(appId, channel);
  }

  async subscriptionCount(appId: string, channel: string): Promise<number> {
    return this.read(async () => Number((await this.o.redis.get(this.o.keys.channelState(appId, channel).count)) ?? 0));
  }

  /** The app's index names the channels some node's share holds; each channel's own keys say its counts. */
  async channels(appId: string, prefix?: string): Promise<Map<string, ChannelInfo>> {
    return this.read(async () => {
      const names = (await this.o.redis.hkeys(this.o.keys.appChannels(appId))).filter((c) => !prefix || c.startsWith(prefix));
      const infos = await Promise.all(
        names.map(async (c) => {
          const k = this.o.keys.channelState(appId, c);
          const [count, users] = await Promise.all([this.o.redis.get(k.count), channelKind(c) === 'presence' ? this.o.redis.hlen(k.users) : 0]);
          return { subscriptionCount: Number(count ?? 0), userCount: users };
        }),
      );
      const out = new Map<string, ChannelInfo>();
      names.forEach((c, i) => {
        if (infos[i].subscriptionCount > 0) out.set(c, infos[i]);
      });
      return out;
    });
  }
}
