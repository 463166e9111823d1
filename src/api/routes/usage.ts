// GET /apps/<id>/usage (ripple's, not Pusher's; signed like every call, and a read for the rate
// limit): what the app uses, on this node since it started, and across the cluster where the cluster
// keeps the figure. Connections cluster-wide are counted only for apps with a maxConnections quota
// (the census); occupied channels always are (the presence store's count of every channel).
import type { FastifyInstance } from 'fastify';
import type { ConnectionCensus } from '../../limits/connection-census.js';
import type { RateWindows } from '../../limits/rate-windows.js';
import type { TrafficCounters } from '../../metrics/metrics.js';
import { StoreUnavailableError, type PresenceStore } from '../../presence/store.js';
import { isInternalChannel } from '../../protocol/channels.js';
import { spend } from '../rate-limit.js';
import { appOf } from '../signed-request.js';

export interface UsageDeps {
  nodeId: string;
  /** ms timestamp: the node's figures count from here */
  startedAt: number;
  /** Cluster mode: other nodes serve the app too. On a single node the node's figures are the cluster's. */
  clustered: boolean;
  sessions: { localConnections(): ReadonlyMap<string, number> };
  traffic: TrafficCounters;
  census: Pick<ConnectionCensus, 'connections'>;
  store: PresenceStore;
  rates: RateWindows;
}

export interface Usage {
  node: {
    id: string;
    started_at: number;
    connections: number;
    messages_in: number;
    bytes_in: number;
    messages_out: number;
    bytes_out: number;
  };
  cluster: {
    /** null: not counted cluster-wide (an app without a connection quota, in cluster mode) */
    connections: number | null;
    occupied_channels: number;
  };
}

export async function usageRoutes(fastify: FastifyInstance, deps: UsageDeps): Promise<void> {
  fastify.get('/apps/:appId/usage', async (req, reply): Promise<Usage> => {
    const app = appOf(req);
    await spend(deps.rates, app, (n, v) => void reply.header(n, v), 'read', 1);
    const connections = deps.sessions.localConnections().get(app.id) ?? 0;
    const t = deps.traffic.traffic(app.id);
    const node = { id: deps.nodeId, started_at: deps.startedAt, connections, messages_in: t.messagesIn, bytes_in: t.bytesIn, messages_out: t.messagesOut, bytes_out: t.bytesOut };
    const clusterConnections = deps.clustered
      ? deps.census.connections(app).catch(() => {
          throw new StoreUnavailableError('the connection census is unavailable');
        })
      : connections;
    const [channels, everywhere] = await Promise.all([deps.store.channels(app.id), clusterConnections]);
    let occupied = 0;
    for (const name of channels.keys()) if (!isInternalChannel(name)) occupied++;
    return { node, cluster: { connections: everywhere ?? null, occupied_channels: occupied } };
  });
}
