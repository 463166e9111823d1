// Messages between the load-generator coordinator and its child processes, and the event payload
// format the publisher and subscribers agree on.
import type { Histogram } from './hist.js';

/**
 * Event data is a plain string (Pusher delivers `data` verbatim):
 *   ~b|<send time, ms, monotonic clock>|<seq>|<padding>
 * seq < 0 marks warm-up events (counted for losses, not for latency or throughput).
 * The marker needs no JSON escaping, so subscribers find it with Buffer.indexOf without parsing JSON.
 */
export const MARK = '~b|';
export const EVENT_NAME = 'bench-event';
export const CLIENT_EVENT_NAME = 'client-bench';

export type HistSparse = ReturnType<Histogram['toSparse']>;

export interface ConnectJob {
  type: 'connect';
  url: string; // ws://127.0.0.1:port/app/key?protocol=7...
  first: number; // global index of this worker's first connection
  count: number;
  /**
   * channel for connection i: one → `${channelPrefix}`; each → `${channelPrefix}${i}`;
   * pairs → `${channelPrefix}${floor(i/2)}`; groups → `${channelPrefix}${i % groups}`.
   * private-/presence- prefixes are signed with key/secret (presence user_id `u<i>`).
   */
  channelPrefix: string;
  layout: 'one' | 'each' | 'pairs' | 'groups';
  groups?: number;
  key: string;
  secret: string;
  /** connect only (wait for connection_established), no subscription */
  noSubscribe?: boolean;
  /** subscribe with message recovery's opt-in (docs/recovery.md) */
  recovery?: boolean;
  concurrency: number;
  timeoutMs: number;
  /**
   * Client addresses to connect from (127.0.0.1, 127.0.0.2, ...): connection i from the (i mod n)th.
   * Absent: the system picks (one address). One client address has only the local port range's
   * ports towards one server port; more addresses hold more connections to one port.
   */
  localAddresses?: string[];
}

export interface ClientEventsJob {
  type: 'client-events';
  ratePerSocket: number;
  durationMs: number;
  warmupMs: number;
  payloadBytes: number;
}

export interface ChurnJob {
  type: 'churn';
  /** sockets whose global index % every === 0 churn; the others stay subscribed as observers */
  every: number;
}

export type ToSub =
  | ConnectJob
  | ClientEventsJob
  | ChurnJob
  | { type: 'churn-stop' }
  | { type: 'mark' }
  | { type: 'reset' }
  | { type: 'count' }
  | { type: 'report' }
  | { type: 'close' };

export interface ConnectResult {
  type: 'connected';
  ok: number;
  failed: number;
  startMs: number;
  endMs: number;
  cpuMs: number; // this process's CPU during the connect phase
  errors: string[];
}

export interface SubReport {
  type: 'report';
  connections: number;
  receivedWarm: number;
  receivedMeasured: number;
  closedEarly: number;
  closeCodes: Record<string, number>;
  firstRecvMs: number;
  lastRecvMs: number;
  hist: HistSparse;
  /** per measured event: the lowest latency this process saw (first delivery), as [seq, ms] pairs */
  firstBySeq: [number, number][];
  cpuMs: number; // user+system since 'mark'
  wallMs: number; // since 'mark'
  /** client events sent by this process */
  sentWarm: number;
  sentMeasured: number;
  /** presence churn: completed joins (subscribe → subscription_succeeded) since 'mark', errors */
  joins: number;
  joinErrors: number;
  /** member_added / member_removed frames received since 'mark' */
  memberEvents: number;
}

export type FromSub =
  | ConnectResult
  | { type: 'count'; received: number; closedEarly: number }
  | SubReport
  | { type: 'ready' }
  | { type: 'closed' }
  | { type: 'reset-done' }
  | { type: 'measuring'; atMs: number }
  | { type: 'sent'; sentWarm: number; sentMeasured: number }
  | { type: 'error'; message: string };

export interface PublishJob {
  type: 'publish';
  baseUrl: string; // http://127.0.0.1:port
  appId: string;
  key: string;
  secret: string;
  channel: string;
  /** events per second; 0 = closed loop (as fast as `inflight` concurrent requests allow) */
  rate: number;
  durationMs: number;
  warmupMs: number;
  payloadBytes: number;
  inflight: number;
}

export type ToPub = PublishJob;

export interface PubReport {
  type: 'done';
  attempted: number;
  ok: number; // HTTP 200 without an error body
  okWarm: number;
  okMeasured: number;
  failed: number;
  errors: string[];
  measureStartMs: number;
  endMs: number; // last response
  lastSendMs: number;
  /** how far (ms) the open-loop schedule fell behind at worst (inflight cap reached) */
  maxLagMs: number;
  reqLatency: HistSparse; // HTTP request round trip of measured triggers
  cpuMs: number; // since measure start
}

export type FromPub = { type: 'ready' } | { type: 'measuring'; atMs: number } | PubReport | { type: 'error'; message: string };
