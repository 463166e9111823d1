// One history read for the recovering subscriptions that ask the same question at once: after a break
// in the node's feed every opted-in subscription of a channel recovers from the same position, and a
// thousand subscribers must not cost Redis a thousand reads of the same events.
import type { ChannelHistory, HistoryPage, HistoryPolicy } from '../history/history.js';

export class SharedReads {
  /** Reads issued so far: a caller shares only a read issued after its mark. */
  private issued = 0;
  private readonly inFlight = new Map<string, { seq: number; page: Promise<HistoryPage> }>();

  constructor(private readonly history: ChannelHistory) {}

  /**
   * Taken once a subscription's frames are held: a read issued before it could miss what was
   * published between that read and the hold's start.
   */
  mark(): number {
    return this.issued;
  }

  /**
   * The page ChannelHistory.read answers, from a read of the same stretch of the node's feed issued
   * after `since` when one is still in flight.
   */
  read(since: number, stretch: number, appId: string, channel: string, afterSerial: number, limit: number, policy: HistoryPolicy): Promise<HistoryPage> {
    const key = `${stretch}\n${afterSerial}\n${limit}\n${appId}\n${channel}`;
    const found = this.inFlight.get(key);
    if (found && found.seq > since) return found.page;
    const entry = { seq: ++this.issued, page: this.history.read(appId, channel, afterSerial, limit, policy) };
    this.inFlight.set(key, entry);
    const settled = () => {
      if (this.inFlight.get(key) === entry) this.inFlight.delete(key);
    };
    entry.page.then(settled, settled);
    return entry.page;
  }
}
