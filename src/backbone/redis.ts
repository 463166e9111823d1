// Cluster fan-out over Redis pub/sub with interest-based routing: a node SUBSCRIBEs only to the
// channels it has local subscribers for, so it receives no traffic of other channels. The publishing
// node delivers to its own sockets itself and ignores its own message coming back. Everything it
// sends goes through its outbox (redis-outbox.ts), so a Redis outage delays cross-node delivery
// instead of losing it, and never reorders it.
//
// A message is "<seq> <instance>\n<except socket id>\n<payload>": `instance` names this process (the
// node id and a random part, so a restarted node with the same id starts afresh) and `seq` counts its
// messages, one count across all channels, so it rises within each channel too. Redis delivers one
// publisher's messages on one channel in order, so a receiver drops any message whose seq is not above
// the last it saw from that instance on that channel: the second copy of a batch that was written
// again after a lost reply. The order across channels is not relied on (connections to several Redis
// shards would each keep only their own). Nodes of earlier versions send the same format (or no
// sequence at all, delivered as is). A recorded event's payload is r<epoch>:<serial> \n frame; those
// come back to their origin too, which delivers them to its opted-in subscriptions only then (its
// others got them when they were published).
//
// Redis Cluster: a channel's frames go by SPUBLISH to its shard, so while that shard fails over
// (cluster-node-timeout plus the election: seconds) they wait in the outbox. A plain (unrecorded)
// channel's frame that Redis has not taken FALLBACK_AFTER_MS after it was queued, while a shard is
// failing (shardFailing: not merely slow), goes also by classic PUBLISH on the one fallback channel
// (RedisKeys.fallback), which Redis Cluster copies to every node,
// through connections to two live primaries; every node SUBSCRIBEs to it (ioredis Cluster's classic
// subscriber, which moves to another node when its own dies). The message is "<shard channel>\n" and
// the normal message, so a receiver routes it as if it came on that shard channel: the interest check,
// and the sequence check that drops whichever copy comes second (the late sharded one, or the second
// fallback copy). Recorded frames never take the fallback: their history is on the shard.
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { EPOCH_KEEP_MS, newEpoch, type HistoryPolicy } from '../history/history.js';
import { recordEvent } from '../history/redis-lua.js';
import { defineScripts, isCluster } from '../redis/clients.js';
import type { RedisKeys } from '../redis/keys.js';
import type { Backbone, BackboneHandlers, LocalDelivery, NodeCommand, Outgoing } from './backbone.js';
import { RedisFeed, shardFeed, withinTimeout } from './redis-feed.js';
import { RedisOutbox, type OutboxEntry, type OutboxLimits, type Waiting } from './redis-outbox.js';

/**
 * Redis Cluster: how long (ms) a plain frame waits untaken, while a shard is failing (shardFailing),
 * before it goes by the fallback too. A shard's round trip is well under a millisecond on a LAN and a
 * few ms on a loaded host; 150 ms is past the event-loop stalls of a busy node, and a tenth of the
 * shortest cluster-node-timeout people run (1.5 s in the tests; Redis's default is 15 s), so a
 * failover's gap is this plus a round trip instead of the failover's whole time.
 */
export const FALLBACK_AFTER_MS = 150;
/** Live primaries each fallback frame is published through: one of them may be the failing one. */
const FALLBACK_COPIES = 2;
/** Redis Cluster: how often at most the cluster's view of its nodes (CLUSTER NODES) is read while frames are due. */
const CLUSTER_VIEW_MS = 250;

export interface RedisBackboneOptions {
  pub: Redis;
  sub: Redis;
  keys: RedisKeys;
  nodeId: string;
  limits: OutboxLimits;
  /** See RedisOutboxOptions.resubscribeGraceMs. */
  resubscribeGraceMs: number;
  log: Logger;
}

/**
 * (sender, channel) pairs whose last sequence number is remembered; the one heard from longest ago is
 * forgotten past this. A second copy comes soon after the first (the outbox writes a failed batch
 * again within a second; on Redis Cluster the sharded copy of a fallback frame comes once the shard's
 * failover is over, seconds later), so only a pair forgotten in between would let one through.
 */
const REMEMBERED_STREAMS = 32_768;
const RECORDED = 114; // 'r'
/** Redis Cluster: how long before a refused SSUBSCRIBE is sent again. */
const SUBSCRIBE_RETRY_MS = 250;

export class RedisBackbone implements Backbone {
  private handlers: BackboneHandlers = { frames: { deliver() {} }, commands: { command() {} }, feed: { feedBroken() {}, feedResumed() {} } };
  /** Redis channel → app/channel this node has interest in */
  private interests = new Map<string, { appId: string; channel: string; subscribed: Promise<void> }>();
  private readonly commandChannel: string;
  private readonly instance: string;
  private seq = 0;
  /** "<sender instance>\n<Redis channel>" → the last sequence number delivered from it there, least recently heard first */
  private readonly lastSeq = new Map<string, number>();
  private readonly outbox: RedisOutbox;
  private readonly feed: RedisFeed;
  /** Redis Cluster: sharded pub/sub (SSUBSCRIBE, SPUBLISH, 'smessage'); see redis/keys.ts for the channel names. */
  private readonly sharded: boolean;
  /** Frames that arrived from other nodes (metrics; the interest-routing test reads it). */
  received = 0;
  /** Redis Cluster: plain frames also sent by the fallback channel while their shard did not take them (metrics). */
  fallbackSent = 0;

  constructor(private readonly o: RedisBackboneOptions) {
    this.commandChannel = o.keys.commands;
    this.instance = `${o.nodeId}/${randomBytes(4).toString('hex')}`;
    this.sharded = isCluster(o.sub);
    defineScripts(o.pub, { historyRecord: recordEvent });
    this.outbox = new RedisOutbox({
      redis: o.pub,
      limits: o.limits,
      resubscribeGraceMs: o.resubscribeGraceMs,
      cluster: this.sharded,
      scripts: { historyRecord: { ...recordEvent, keys: 4 } },
      fallback: this.sharded ? { afterMs: FALLBACK_AFTER_MS, open: (oldestAt) => this.fallbackOpen(oldestAt), send: (entries) => this.sendFallback(entries) } : undefined,
      log: o.log,
    });
    this.feed = new RedisFeed(this.sharded ? shardFeed(o.sub) : o.sub, o.pub, () => this.handlers.feed, o.log);
    if (this.sharded) {
      o.pub.on('-node', (node: Redis) => this.lostPrimaries.add(nodeKey(node)));
      o.pub.on('+node', (node: Redis) => node.once('ready', () => this.lostPrimaries.delete(nodeKey(node))));
    }
  }

  private subscribe(redisChannel: string): Promise<unknown> {
    return this.sharded ? this.o.sub.ssubscribe(redisChannel) : this.o.sub.subscribe(redisChannel);
  }

  get buffered(): { events: number; bytes: number } {
    return { events: this.outbox.length, bytes: this.outbox.waitingBytes };
  }

  get refused(): number {
    return this.outbox.refused;
  }

  async start(handlers: BackboneHandlers): Promise<void> {
    this.handlers = handlers;
    this.o.sub.on(this.sharded ? 'smessage' : 'message', (redisChannel: string, message: string) => this.receive(redisChannel, message));
    if (this.sharded) {
      this.o.sub.on('message', (redisChannel: string, message: string) => {
        if (redisChannel === this.o.keys.fallback) this.receiveFallback(message);
      });
      // ioredis Cluster's classic subscriber: one connection to a random node, which on that
      // connection's end picks another node at once and subscribes there again (autoResubscribe).
      this.o.sub.subscribe(this.o.keys.fallback).catch((err) => this.o.log.warn({ err }, 'fallback channel subscribe failed'));
    }
    await this.subscribe(this.commandChannel).catch((err) => this.o.log.warn({ err }, 'command channel subscribe deferred'));
  }

  /** A fallback frame: routed as the same message arriving on its shard channel (never a node command). */
  private receiveFallback(message: string): void {
    const nl = message.indexOf('\n');
    if (nl <= 0) return;
    const redisChannel = message.slice(0, nl);
    if (redisChannel === this.commandChannel) return;
    this.receive(redisChannel, message.slice(nl + 1));
  }

  /** Redis Cluster: nodes whose connection ended, and no connection to them became ready since (see shardFailing). */
  private readonly lostPrimaries = new Set<string>();
  /** The cluster's view of its nodes, as last read (see shardFailing). */
  private view = { failing: false, at: 0, reading: false };

  /** When shardFailing last saw a shard failing. */
  private failingSeenAt = -Infinity;

  /**
   * The fallback's gate: open while a shard is failing (shardFailing), and after it, while the oldest
   * waiting frame was queued when it was (the failure's backlog: written one after the other on the
   * new primary, it would otherwise hold the frames after it back as long).
   */
  private fallbackOpen(oldestAt: number, now = Date.now()): boolean {
    const failing = this.shardFailing(now);
    if (failing === undefined) return false;
    if (failing) {
      this.failingSeenAt = now;
      return true;
    }
    return oldestAt <= this.failingSeenAt;
  }

  /**
   * Whether a shard is failing, not merely slow. Either this node's connection to a
   * primary of its slot map is not up (a primary SIGKILLed or unreachable: ioredis drops the connection
   * and tries it again), or the cluster flags a primary that serves slots as failing (`fail?` or `fail`
   * in CLUSTER NODES: a primary frozen or cut off while its connection still looks up, seen once the
   * cluster's node timeout has passed). A shard that is only slow (overloaded, a CLIENT PAUSE) is
   * neither: its frames wait for it rather than reaching every node twice. Undefined when no primary's
   * connection is up (Redis Cluster away as a whole): there is no way out.
   */
  private shardFailing(now = Date.now()): boolean | undefined {
    const pub = this.o.pub as unknown as { slots: (string[] | undefined)[]; connectionPool: { getInstanceByKey(key: string): Redis | undefined } };
    const owners = new Set<string>();
    for (const s of pub.slots) if (s?.[0]) owners.add(s[0]);
    let up = 0;
    let down = false;
    for (const key of owners) {
      const status = pub.connectionPool.getInstanceByKey(key)?.status;
      if (status === 'ready') up++;
      // Not opened yet ('wait': ioredis connects to a node when a command first goes there) is no
      // failure, unless its last connection ended and none came up since (ioredis puts a dead primary
      // back in its pool, unopened, at each slot refresh until the cluster replaces it).
      else if ((status !== 'wait' && status !== 'connect') || this.lostPrimaries.has(key)) down = true;
    }
    // No primary up: the frames wait. Handed over now they would be lost to the fallback, and a later
    // frame sent by it would have the receivers drop them as copies when they come by their shard.
    if (up === 0) return undefined;
    if (down) return true;
    if (!this.view.reading && now - this.view.at >= CLUSTER_VIEW_MS) this.readClusterView(now);
    // A view older than a few reads (none answered since) says nothing.
    return this.view.failing && now - this.view.at < 4 * CLUSTER_VIEW_MS;
  }

  /** Reads CLUSTER NODES from every primary whose connection is up, and takes the first answer. */
  private readClusterView(now: number): void {
    const view = this.view;
    view.reading = true;
    const primaries = (this.o.pub as unknown as { nodes(role: 'master'): Redis[] }).nodes('master').filter((n) => n.status === 'ready');
    // A frozen primary never answers: the others do, or the read is given up.
    withinTimeout(Promise.any(primaries.map((n) => n.call('CLUSTER', 'NODES') as Promise<string>)), 2 * CLUSTER_VIEW_MS).then(
      (text) => {
        view.failing = String(text)
          .split('\n')
          .some((line) => {
            const f = line.split(' ');
            const flags = (f[2] ?? '').split(',');
            return f.length > 8 && flags.includes('master') && (flags.includes('fail') || flags.includes('fail?'));
          });
        view.at = now;
        view.reading = false;
      },
      () => {
        view.reading = false;
      },
    );
  }

  /**
   * Publishes stuck plain frames on the fallback channel through the first FALLBACK_COPIES primaries
   * whose connection is up (sorted, so the same ones while they stay up: each keeps the frames' order).
   * A primary that is failing may still look up; the second copy covers it.
   */
  private sendFallback(entries: readonly OutboxEntry[]): void {
    const primaries = (this.o.pub as unknown as { nodes(role: 'master'): Redis[] })
      .nodes('master')
      .filter((n) => n.status === 'ready')
      .sort((a, b) => nodeKey(a).localeCompare(nodeKey(b)))
      .slice(0, FALLBACK_COPIES);
    if (!primaries.length) return;
    const messages = entries.flatMap((e) => (e.kind === 'publish' ? [`${e.channel}\n${e.message}`] : []));
    // All written at once: one connection keeps them in order, behind the previous call's.
    const sent = primaries.map((node) => Promise.all(messages.map((m) => node.publish(this.o.keys.fallback, m))));
    Promise.any(sent).then(
      () => (this.fallbackSent += messages.length),
      () => this.o.log.debug({ frames: messages.length }, 'fallback publish failed: the frames wait for their shard'),
    );
  }

  private receive(redisChannel: string, message: string): void {
    const a = message.indexOf('\n');
    const b = message.indexOf('\n', a + 1);
    if (a < 0 || b < 0) return;
    const recorded = message.charCodeAt(b + 1) === RECORDED;
    const space = message.indexOf(' ');
    // No space in the first line: a node of an earlier version (its node id, no sequence number).
    if (space > 0 && space < a && !this.firstTime(message.slice(space + 1, a), redisChannel, Number(message.slice(0, space)), recorded)) return;
    let payload = message.slice(b + 1);
    if (redisChannel === this.commandChannel) {
      try {
        this.handlers.commands.command(JSON.parse(payload) as NodeCommand);
      } catch (err) {
        this.o.log.warn({ err }, 'bad node command');
      }
      return;
    }
    const target = this.interests.get(redisChannel);
    if (!target) return;
    this.received++;
    const except = message.slice(a + 1, b);
    let position: string | undefined;
    if (recorded) {
      const nl = payload.indexOf('\n');
      position = payload.slice(1, nl);
      payload = payload.slice(nl + 1);
    }
    // This node's own recorded event reached its plain subscribers when it was published (publishRecorded).
    const own = recorded && a === space + 1 + this.instance.length && message.startsWith(this.instance, space + 1);
    this.handlers.frames.deliver(target.appId, target.channel, payload, except || undefined, position, undefined, own ? 'positioned' : 'all');
  }

  /**
   * False for this node's own messages (but recorded events, which it delivers on receipt) and for a
   * message already delivered on this channel (a batch written twice).
   */
  private firstTime(sender: string, redisChannel: string, seq: number, recorded: boolean): boolean {
    if (sender === this.instance && !recorded) return false;
    const stream = `${sender}\n${redisChannel}`;
    const last = this.lastSeq.get(stream);
    if (last !== undefined) {
      if (seq <= last) return false;
      this.lastSeq.delete(stream); // set again below, as the most recently heard
    } else if (this.lastSeq.size >= REMEMBERED_STREAMS) {
      this.lastSeq.delete(this.lastSeq.keys().next().value!);
    }
    this.lastSeq.set(stream, seq);
    return true;
  }

  private head(except: string, seq = ++this.seq): string {
    return `${seq} ${this.instance}\n${except}\n`;
  }

  hasRoom(frames: readonly string[]): boolean {
    return this.outbox.hasRoom(frames);
  }

  publishRecorded(appId: string, channel: string, frame: string, policy: HistoryPolicy, exceptSocketId?: string): void {
    // Numbered, kept and published in one script; every node (this one too) delivers it with its
    // position on receipt. Subscriptions without recovery get it now, as an unrecorded event.
    const bytes = Buffer.byteLength(frame);
    this.handlers.frames.deliver(appId, channel, frame, exceptSocketId, undefined, bytes, 'plain');
    this.outbox.push(this.recordEntry(appId, channel, frame, policy, exceptSocketId), bytes);
  }

  private recordEntry(appId: string, channel: string, frame: string, policy: HistoryPolicy, exceptSocketId: string | undefined): OutboxEntry {
    const except = exceptSocketId ?? '';
    const k = this.o.keys.history(appId, channel);
    const seq = ++this.seq;
    const head = this.head(except, seq);
    const args = [k.epoch, k.serial, k.events, k.senders, newEpoch(), policy.size, policy.ttlMs, EPOCH_KEEP_MS, frame, except, this.o.keys.channel(appId, channel), head, this.instance, seq];
    if (this.sharded) args.push('SPUBLISH');
    return { kind: 'eval', script: 'historyRecord', args };
  }

  publish(appId: string, channel: string, frame: string, exceptSocketId?: string): void {
    const bytes = Buffer.byteLength(frame);
    this.handlers.frames.deliver(appId, channel, frame, exceptSocketId, undefined, bytes);
    this.outbox.push(this.publishEntry(appId, channel, frame, exceptSocketId), bytes);
  }

  private publishEntry(appId: string, channel: string, frame: string, exceptSocketId: string | undefined): OutboxEntry {
    return { kind: 'publish', channel: this.o.keys.channel(appId, channel), message: this.head(exceptSocketId ?? '') + frame, fallback: this.sharded || undefined };
  }

  writesNow(): boolean {
    return this.outbox.idle();
  }

  written(): Promise<void> | undefined {
    return this.outbox.written();
  }

  publishAcross(events: readonly Outgoing[]): LocalDelivery[] {
    const local: LocalDelivery[] = [];
    const entries: Waiting[] = [];
    const at = Date.now();
    for (const e of events) {
      const bytes = Buffer.byteLength(e.frame);
      const entry = e.policy ? this.recordEntry(e.appId, e.channel, e.frame, e.policy, e.exceptSocketId) : this.publishEntry(e.appId, e.channel, e.frame, e.exceptSocketId);
      entries.push({ entry, bytes, at });
      // A recorded event reaches this node's opted-in subscriptions when Redis hands it back (publishRecorded).
      local.push({ appId: e.appId, channel: e.channel, frame: e.frame, exceptSocketId: e.exceptSocketId, position: undefined, bytes, audience: e.policy ? 'plain' : 'all' });
    }
    this.outbox.pushNow(entries);
    return local;
  }

  addInterest(appId: string, channel: string): void {
    const rc = this.o.keys.channel(appId, channel);
    // A failed subscribe is re-sent by autoResubscribe after a reconnect. On Redis Cluster one refused
    // before it reached a shard (no subscriber for the slot yet) is not known to ioredis: sent again.
    const attempt = (): Promise<void> =>
      this.subscribe(rc).then(
        () => {},
        (err) => {
          this.o.log.debug({ err, channel: rc }, 'subscribe failed');
          if (!this.sharded || this.interests.get(rc) !== entry || this.closing) return;
          return new Promise<void>((r) => setTimeout(r, SUBSCRIBE_RETRY_MS)).then(() => (this.interests.get(rc) === entry && !this.closing ? attempt() : undefined));
        },
      );
    const entry = { appId, channel, subscribed: Promise.resolve() };
    this.interests.set(rc, entry);
    entry.subscribed = attempt();
  }

  interestReady(appId: string, channel: string): Promise<number> {
    return this.feed.ready(this.interests.get(this.o.keys.channel(appId, channel))?.subscribed);
  }

  caughtUp(stretch: number): Promise<boolean> {
    return this.feed.caughtUp(stretch);
  }

  removeInterest(appId: string, channel: string): void {
    const rc = this.o.keys.channel(appId, channel);
    this.interests.delete(rc);
    (this.sharded ? this.o.sub.sunsubscribe(rc) : this.o.sub.unsubscribe(rc)).catch(() => {});
  }

  broadcastCommand(cmd: NodeCommand): void {
    this.handlers.commands.command(cmd);
    const payload = JSON.stringify(cmd);
    this.outbox.push({ kind: 'publish', channel: this.commandChannel, message: this.head('') + payload }, Buffer.byteLength(payload));
  }

  /** Other nodes get what this node publishes now, and this node gets theirs. */
  isHealthy(): boolean {
    return this.outbox.flowing() && this.o.sub.status === 'ready';
  }

  private closing = false;

  async close(): Promise<void> {
    this.closing = true;
    await this.outbox.close(2000);
    this.feed.close();
    this.o.sub.disconnect();
  }
}

function nodeKey(n: Redis): string {
  return `${n.options.host}:${n.options.port}`;
}
