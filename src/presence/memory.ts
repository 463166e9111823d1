import type { ChannelInfo, JoinResult, PresenceMember, PresenceStore } from './store.js';

interface PresenceChannel {
  /** userId → sockets of that user in the channel */
  sockets: Map<string, Set<string>>;
  /** userId → user_info of the user's first socket (spec §5.3: keep the first) */
  info: Map<string, unknown>;
}

/** Single-node state. Every call changes state synchronously, so calls apply in call order. */
export class MemoryPresenceStore implements PresenceStore {
  /** appId → channel → socket count */
  private counts = new Map<string, Map<string, number>>();
  /** appId → channel → presence state */
  private presence = new Map<string, Map<string, PresenceChannel>>();

  private appCounts(appId: string): Map<string, number> {
    let m = this.counts.get(appId);
    if (!m) this.counts.set(appId, (m = new Map()));
    return m;
  }

  async addSubscription(appId: string, channel: string): Promise<number> {
    const m = this.appCounts(appId);
    const n = (m.get(channel) ?? 0) + 1;
    m.set(channel, n);
    return n;
  }

  async removeSubscription(appId: string, channel: string): Promise<number> {
    const m = this.appCounts(appId);
    const n = Math.max(0, (m.get(channel) ?? 0) - 1);
    if (n === 0) m.delete(channel);
    else m.set(channel, n);
    return n;
  }

  async joinPresence(appId: string, channel: string, socketId: string, member: PresenceMember): Promise<JoinResult> {
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

  async leavePresence(appId: string, channel: string, socketId: string, userId: string): Promise<boolean> {
    const chans = this.presence.get(appId);
    const pc = chans?.get(channel);
    const set = pc?.sockets.get(userId);
    if (!pc || !set || !set.delete(socketId)) return false;
    if (set.size > 0) return false;
    pc.sockets.delete(userId);
    pc.info.delete(userId);
    if (pc.sockets.size === 0) chans!.delete(channel);
    return true;
  }

  async subscribePresence(appId: string, channel: string, socketId: string, member: PresenceMember): Promise<JoinResult & { count: number }> {
    const count = await this.addSubscription(appId, channel);
    return { ...(await this.joinPresence(appId, channel, socketId, member)), count };
  }

  async unsubscribePresence(appId: string, channel: string, socketId: string, userId: string): Promise<{ last: boolean; count: number }> {
    const last = await this.leavePresence(appId, channel, socketId, userId);
    return { last, count: await this.removeSubscription(appId, channel) };
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

  async close(): Promise<void> {}
}
