// One node's channel histories, in this process: they end with it.
import { EPOCH_KEEP_MS, newEpoch, type ChannelHistory, type HistoryPage, type HistoryPolicy, type Position, type RecordedEvent } from './history.js';

interface Channel {
  epoch: string;
  serial: number;
  events: RecordedEvent[];
  touched: number;
}

export class MemoryHistory implements ChannelHistory {
  private readonly channels = new Map<string, Channel>();
  private readonly sweeper: NodeJS.Timeout;

  constructor() {
    // Forget numberings idle for a day (their clients then see a new epoch).
    this.sweeper = setInterval(() => {
      const old = Date.now() - EPOCH_KEEP_MS;
      for (const [k, c] of this.channels) if (c.touched < old) this.channels.delete(k);
    }, 60_000);
    this.sweeper.unref();
  }

  private channel(appId: string, channel: string, now: number): Channel {
    const key = `${appId}\n${channel}`;
    let c = this.channels.get(key);
    if (!c) this.channels.set(key, (c = { epoch: newEpoch(), serial: 0, events: [], touched: now }));
    c.touched = now;
    return c;
  }

  private static trim(c: Channel, policy: HistoryPolicy, now: number): void {
    let drop = Math.max(0, c.events.length - policy.size);
    while (drop < c.events.length && c.events[drop].t <= now - policy.ttlMs) drop++;
    if (drop) c.events.splice(0, drop);
  }

  /** Numbers and keeps one event; the caller delivers it in the same tick (so in numbering order). */
  record(appId: string, channel: string, frame: string, except: string | undefined, policy: HistoryPolicy): Position {
    const now = Date.now();
    const c = this.channel(appId, channel, now);
    c.events.push({ serial: ++c.serial, frame, except, t: now });
    MemoryHistory.trim(c, policy, now);
    return { epoch: c.epoch, serial: c.serial };
  }

  async read(appId: string, channel: string, afterSerial: number, limit: number, policy: HistoryPolicy): Promise<HistoryPage> {
    const now = Date.now();
    const c = this.channel(appId, channel, now);
    MemoryHistory.trim(c, policy, now);
    const first = c.events.length ? c.events[0].serial : c.serial + 1;
    const from = Math.max(0, afterSerial + 1 - first);
    return { epoch: c.epoch, last: c.serial, first, events: c.events.slice(from, from + limit) };
  }
}
