import type { ChannelInfo, ClusterStateHandler, JoinResult, PresenceJoin, PresenceLeave, PresenceMember, PresenceStore } from './store.js';

interface PresenceChannel {
  /** userId → sockets of that user in the channel */
  sockets: Map<string, Set<string>>;
  /** userId → user_info of the user's first socket (spec §5.3: keep the first) */
  info: Map<string, unknown>;
}

/**
 * Single-node state. Every call changes state synchronously (the private helpers never await), so
 * calls apply in call order and a check and the change it guards cannot interleave with another call.
 */
export class MemoryPresenceStore implements PresenceStore {
  readonly queuesTransitionWebhooks = false;
  /** appId → channel → socket count */
  private counts = new Map<string, Map<string, number>>();
  /** appId → channel → presence state */
  private presence = new Map<string, Map<string, PresenceChannel>>();

  start(_handler: ClusterStateHandler): void {
    // One node: no other node's share can go away, so there is never anything to report.
  }

  private count(appId: string, channel: string, delta: 1 | -1): number {
    let m = this.counts.get(appId);
    if (!m) this.counts.set(appId, (m = new Map()));
    const n = Math.max(0, (m.get(channel) ?? 0) + delta);
    if (n === 0) m.delete(channel);
    else m.set(channel, n);
    return n;
  }

  private join(appId: string, channel: string, socketId: string, member: PresenceMember): JoinResult {
    let chans = this.presence.get(appId);
    if (!chans) this.presence.set(appId, (chans = new Map()));
    let pc = chans.get(channel);
    if (!pc) chans.set(channel, (pc = { sockets: new Map(), info: new Map() }));
    let set = pc.sockets.get(member.userId);
    const added = !set;
    if (!set) {
      pc.sockets.set(member.userId, (set = new Set()));
      pc.info.set(member.userId, member.userInfo);
    }
    set.add(socketId);
    return { added, members: new Map(pc.info) };
  }

  /** -1: the socket was not there; 1: it was the user's last socket; 0: otherwise. */
  private leave(appId: string, channel: string, socketId: string, userId: string): -1 | 0 | 1 {
    const chans = this.presence.get(appId);
    const pc = chans?.get(channel);
    const set = pc?.sockets.get(userId);
    if (!pc || !set || !set.delete(socketId)) return -1;
    if (set.size > 0) return 0;
    pc.sockets.delete(userId);
    pc.info.delete(userId);
    if (pc.sockets.size === 0) chans!.delete(channel);
    return 1;
  }

  async addSubscription(appId: string, channel: string): Promise<number> {
    return this.count(appId, channel, 1);
  }

  async removeSubscription(appId: string, channel: string): Promise<number> {
    return this.count(appId, channel, -1);
  }

  async joinPresence(appId: string, channel: string, socketId: string, member: PresenceMember): Promise<JoinResult> {
    return this.join(appId, channel, socketId, member);
  }

  async leavePresence(appId: string, channel: string, socketId: string, userId: string): Promise<boolean> {
    return this.leave(appId, channel, socketId, userId) === 1;
  }

  async subscribePresence(appId: string, channel: string, socketId: string, member: PresenceMember, maxMembers: number): Promise<PresenceJoin> {
    const pc = this.presence.get(appId)?.get(channel);
    if (pc && !pc.sockets.has(member.userId) && pc.sockets.size >= maxMembers) return { refused: true };
    const count = this.count(appId, channel, 1);
    return { refused: false, count, ...this.join(appId, channel, socketId, member) };
  }

  async unsubscribePresence(appId: string, channel: string, socketId: string, userId: string): Promise<PresenceLeave> {
    const left = this.leave(appId, channel, socketId, userId);
    if (left < 0) return { held: false, last: false, count: this.counts.get(appId)?.get(channel) ?? 0 };
    return { held: true, last: left === 1, count: this.count(appId, channel, -1) };
  }

  async members(appId: string, channel: string): Promise<Map<string, unknown>> {
    return new Map(this.presence.get(appId)?.get(channel)?.info ?? []);
  }

  async userCount(appId: string, channel: string): Promise<number> {
    return this.presence.get(appId)?.get(channel)?.sockets.size ?? 0;
  }

  async subscriptionCount(appId: string, channel: string): Promise<number> {
    return this.counts.get(appId)?.get(channel) ?? 0;
  }

  async channels(appId: string, prefix?: string): Promise<Map<string, ChannelInfo>> {
    const out = new Map<string, ChannelInfo>();
    for (const [channel, n] of this.counts.get(appId) ?? []) {
      if (prefix && !channel.startsWith(prefix)) continue;
      out.set(channel, { subscriptionCount: n, userCount: this.presence.get(appId)?.get(channel)?.sockets.size ?? 0 });
    }
    return out;
  }
}
