// One node, everything in this process.
import { MemoryBackbone } from '../backbone/memory.js';
import { MemoryChannelCache } from '../cache/memory.js';
import { MemoryHistory } from '../history/memory.js';
import { MemoryConnectionCensus } from '../limits/connection-census.js';
import { MemoryRateWindows } from '../limits/rate-windows.js';
import { MemoryPresenceStore } from '../presence/memory.js';
import { MemoryWebhookQueue } from '../webhooks/queue.js';
import type { Engine, EngineHandlers } from './engine.js';

export function memoryEngine(cacheTtlMs: number): Engine {
  const history = new MemoryHistory();
  const backbone = new MemoryBackbone(history);
  const store = new MemoryPresenceStore();
  return {
    mode: 'memory',
    backbone,
    store,
    cache: new MemoryChannelCache(cacheTtlMs),
    history,
    rates: new MemoryRateWindows(),
    census: new MemoryConnectionCensus(),
    webhookQueue: new MemoryWebhookQueue(),
    async start(handlers: EngineHandlers) {
      store.start(handlers.clusterState);
      await backbone.start(handlers);
    },
    isHealthy: () => true,
    async leave() {},
    async close() {},
  };
}
