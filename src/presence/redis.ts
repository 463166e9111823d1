// Cluster-wide channel and presence state in Redis. Every node keeps its own share attributable to
// it (per-node keys) plus two local records of that share: what its sockets hold now (`mine`) and
// what Redis is known to hold (`confirmed`, from the replies). The node lease removes a dead node's
// share (dropNode) and has this node write its share again when Redis may not hold it as it is
// (rejoin), or write back what Redis held when Redis lost its data (restore).
//
// How a Redis outage heals (the node lease drives it; see cluster/node-lease.ts):
//  - While Redis is unreachable, sockets still leave (and subscribe to non-presence channels): `mine`
//    follows them, nothing is announced, since no node alone knows whether a user is still in the
//    channel through another node. Presence joins are refused (the member limit is cluster-wide).
//  - What every client was told is the state Redis held when the outage began: the announced
//    transitions are exactly those the scripts made.
//  - When Redis is back with its data and every node had time to reconnect (so none is taken for
//    dead meanwhile, and every node's frames reach the others), each node's rejoin replaces its share
//    with `mine` in one script that compares every touched channel and user before and after, against
//    all other nodes' shares: the differences are the real transitions of the outage, announced to the
//    clients (member_removed, member_added, subscription_count) and queued as webhooks in that same
//    step. A member who left one node but is still on another is in the channel before and after:
//    nothing.
//  - When Redis lost its data (restart without persistence), Redis first gets back what every
//    client was told: each node restores `confirmed` silently, and only once every node alive before
//    has done so (or the lease time has passed) does any node rejoin as above. Rejoining against a
//    half-rebuilt state would announce members of the other nodes as removed, then added again.
//  - Until its rejoin is done a node's calls wait (bounded by the lease time), so no transition is
//    computed against a state that is not yet rebuilt; each local record changes exactly when its
//    command is sent, so a rejoin always carries what Redis was sent, in order.
import type { NodeShare } from '../cluster/node-lease.js';
import { ONLINE_CHANNEL, channelKind } from '../protocol/channels.js';
import { defineScripts, type Scripted } from '../redis/clients.js';
import * as lua from './redis-lua.js';
import { NO_QUEUES, RedisShareStore, ShareRecord, parseEvents, queuesOf, routeArgs, type Args, type RedisPresenceOptions } from './redis-share.js';
import type { ChannelInfo, PresenceStore } from './store.js';

export type { LeaseLink, RedisPresenceOptions } from './redis-share.js';

export class RedisPresenceStore extends RedisShareStore implements PresenceStore, NodeShare {
  private readonly r: Scripted;
  /** this node's share in Redis: N.subs and N.pres of the scripts */
  private readonly nodeSubs: string;
  private readonly nodePres: string;

  constructor(o: RedisPresenceOptions) {
    super(o);
    this.nodeSubs = o.keys.nodeSubscriptions(o.nodeId);
    this.nodePres = o.keys.nodePresence(o.nodeId);
    this.r = defineScripts(o.redis, {
      rAddSub: lua.addSubscription,
      rRemoveSub: lua.removeSubscription,
      rJoin: lua.joinPresence,
      rSubPres: lua.subscribePresence,
      rUnsubPres: lua.unsubscribePresence,
      rLeave: lua.leavePresence,
      rDropNode: lua.dropNode,
      rReplay: lua.replayShare,
      rRestore: lua.restoreShare,
    });
  }

  /**
   * Runs a script (see redis-lua.ts): its keys, then the streams of the webhook queues its routes
   * name; ARGV the doorbell, now, those queues, then its own arguments.
   */
  private run(script: string, keys: string[], queues: ReadonlySet<string>, args: Args, now = Date.now()): Promise<unknown> {
    const k = this.o.keys;
    const streams = [...queues].map((q) => k.webhookStream(q));
    return this.r[script](keys.length + streams.length, ...keys, ...streams, k.webhookBell, now, queues.size, ...queues, ...args);
  }

  /** One channel's presence hashes, in the scripts' order (C.sockets C.users C.infos). */
  private presenceKeys(appId: string, channel: string): string[] {
    const p = this.o.keys.presence(appId, channel);
    return [p.sockets, p.users, p.infos];
  }

  /** Routes of every channel `node` holds in Redis, and of `share`'s (a script's routes argument), with the queues they name. */
  private async routesOf(node: string, share?: ShareRecord): Promise<{ args: Args; queues: ReadonlySet<string> }> {
    if (!this.o.routes.any) return { args: [0], queues: NO_QUEUES };
    const [subs, pres] = await Promise.all([this.o.redis.hkeys(this.o.keys.nodeSubscriptions(node)), this.o.redis.smembers(this.o.keys.nodePresence(node))]);
    const fields = new Set(subs);
    for (const m of pres) fields.add(m.split('\n', 2).join('\n'));
    for (const f of share?.subs.keys() ?? []) fields.add(f);
    const out: Args = [];
    const queues = new Set<string>();
    let n = 0;
    for (const f of fields) {
      const [appId, channel] = f.split('\n');
      const r = channel === ONLINE_CHANNEL ? undefined : this.o.routes.routes(appId, channel);
      if (!r) continue;
      out.push(appId, channel, ...routeArgs(r));
      queuesOf(r, queues);
      n++;
    }
    return { args: [n, ...out], queues };
  }

  async rejoin(): Promise<void> {
    const routes = await this.routesOf(this.o.nodeId, this.mine);
    // Taken and sent in one step: every change sent before is in it, every one sent after is not.
    const share = this.mine.copy();
    const events = parseEvents(await this.run('rReplay', [this.nodeSubs, this.nodePres], routes.queues, [this.o.keys.statePrefix, this.o.nodeId, ...share.args(), ...routes.args]));
    this.confirmed = share;
    this.openGate();
    this.o.log.info({ subscriptions: share.subs.size, presence: share.presence.size, changes: events.length }, 'cluster state registered');
    if (events.length) this.handler.stateChanged(events);
  }

  async restore(): Promise<void> {
    await this.run('rRestore', [this.nodeSubs, this.nodePres], NO_QUEUES, [this.o.keys.statePrefix, this.o.nodeId, ...this.confirmed.args()]);
    this.o.log.info({ subscriptions: this.confirmed.subs.size, presence: this.confirmed.presence.size }, 'cluster state restored after Redis lost it');
  }

  async dropNode(node: string, now: number): Promise<void> {
    const routes = await this.routesOf(node);
    const k = this.o.keys;
    const keys = [k.nodes, k.nodeSubscriptions(node), k.nodePresence(node)];
    const events = parseEvents(await this.run('rDropNode', keys, routes.queues, [k.statePrefix, node, ...routes.args], now));
    if (events.length) this.handler.stateChanged(events);
  }

  protected sendCount(appId: string, channel: string, delta: 1 | -1): Promise<unknown> {
    const r = this.o.routes.routes(appId, channel);
    return this.run(delta > 0 ? 'rAddSub' : 'rRemoveSub', [this.nodeSubs, this.o.keys.appSubscriptions(appId)], queuesOf(r), [appId, channel, ...routeArgs(r)]);
  }

  protected sendJoin(appId: string, channel: string, socketId: string, userId: string, info: string): Promise<unknown> {
    return this.run('rJoin', [this.nodePres, ...this.presenceKeys(appId, channel)], NO_QUEUES, [this.o.nodeId, appId, channel, socketId, userId, info]);
  }

  protected sendLeave(appId: string, channel: string, socketId: string, userId: string): Promise<unknown> {
    return this.run('rLeave', [this.nodePres, ...this.presenceKeys(appId, channel)], NO_QUEUES, [this.o.nodeId, appId, channel, socketId, userId]);
  }

  protected sendSubscribePresence(appId: string, channel: string, socketId: string, userId: string, info: string, maxMembers: number): Promise<unknown> {
    const r = this.o.routes.routes(appId, channel);
    const args = [this.o.nodeId, appId, channel, socketId, userId, info, maxMembers, ...routeArgs(r)];
    const keys = [this.nodeSubs, this.nodePres, this.o.keys.appSubscriptions(appId), ...this.presenceKeys(appId, channel)];
    return this.run('rSubPres', keys, queuesOf(r), args);
  }

  protected sendUnsubscribePresence(appId: string, channel: string, socketId: string, userId: string): Promise<unknown> {
    const r = this.o.routes.routes(appId, channel);
    const keys = [this.nodeSubs, this.nodePres, this.o.keys.appSubscriptions(appId), ...this.presenceKeys(appId, channel)];
    return this.run('rUnsubPres', keys, queuesOf(r), [this.o.nodeId, appId, channel, socketId, userId, ...routeArgs(r)]);
  }

  async subscriptionCount(appId: string, channel: string): Promise<number> {
    return this.read(async () => Number((await this.o.redis.hget(this.o.keys.appSubscriptions(appId), channel)) ?? 0));
  }

  async channels(appId: string, prefix?: string): Promise<Map<string, ChannelInfo>> {
    return this.read(async () => {
      const all = await this.o.redis.hgetall(this.o.keys.appSubscriptions(appId));
      const names = Object.keys(all).filter((c) => !prefix || c.startsWith(prefix));
      const presence = names.filter((c) => channelKind(c) === 'presence');
      const counts = new Map<string, number>();
      if (presence.length) {
        const pipe = this.o.redis.pipeline();
        for (const c of presence) pipe.hlen(this.o.keys.presence(appId, c).users);
        const res = (await pipe.exec()) ?? [];
        presence.forEach((c, i) => counts.set(c, Number(res[i]?.[1] ?? 0)));
      }
      const out = new Map<string, ChannelInfo>();
      for (const c of names) out.set(c, { subscriptionCount: Number(all[c]), userCount: counts.get(c) ?? 0 });
      return out;
    });
  }
}
