// The read side of the Redis channel history; recording is RedisBackbone.publishRecorded (one Lua step
// with the fan-out, see redis-lua.ts).
import type { Redis } from 'ioredis';
import { defineScripts, type Scripted } from '../redis/clients.js';
import type { RedisKeys } from '../redis/keys.js';
import { EPOCH_KEEP_MS, newEpoch, type ChannelHistory, type HistoryPage, type HistoryPolicy } from './history.js';
import { readHistory } from './redis-lua.js';

export class RedisHistory implements ChannelHistory {
  private readonly r: Scripted;

  constructor(
    redis: Redis,
    private readonly keys: RedisKeys,
  ) {
    this.r = defineScripts(redis, { historyRead: readHistory });
  }

  async read(appId: string, channel: string, afterSerial: number, limit: number, policy: HistoryPolicy): Promise<HistoryPage> {
    const k = this.keys.history(appId, channel);
    const res = (await this.r.historyRead(k.epoch, k.serial, k.events, newEpoch(), afterSerial, limit, policy.ttlMs, EPOCH_KEEP_MS)) as (string | number)[];
    const page: HistoryPage = { epoch: String(res[0]), last: Number(res[1]), first: Number(res[2]), events: [] };
    for (let i = 3; i + 3 < res.length; i += 4) {
      const except = String(res[i + 2]);
      page.events.push({ serial: Number(res[i]), frame: String(res[i + 1]), except: except || undefined, t: Number(res[i + 3]) });
    }
    return page;
  }
}
