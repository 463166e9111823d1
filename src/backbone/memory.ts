import { formatPosition, type HistoryPolicy } from '../history/history.js';
import type { MemoryHistory } from '../history/memory.js';
import type { Backbone, BackboneHandlers, LocalDelivery, NodeCommand, Outgoing } from './backbone.js';

const idle: BackboneHandlers = { frames: { deliver() {} }, commands: { command() {} }, feed: { feedBroken() {}, feedResumed() {} } };

/** Single-node backbone: publishing is local delivery. */
export class MemoryBackbone implements Backbone {
  private handlers = idle;
  readonly received = 0;
  readonly buffered = { events: 0, bytes: 0 };
  readonly refused = 0;
  readonly fallbackSent = 0;

  constructor(private readonly history: MemoryHistory) {}

  async start(handlers: BackboneHandlers): Promise<void> {
    this.handlers = handlers;
  }

  hasRoom(): boolean {
    return true;
  }

  publish(appId: string, channel: string, frame: string, exceptSocketId?: string): void {
    this.handlers.frames.deliver(appId, channel, frame, exceptSocketId);
  }

  publishRecorded(appId: string, channel: string, frame: string, policy: HistoryPolicy, exceptSocketId?: string): void {
    const position = this.history.record(appId, channel, frame, exceptSocketId, policy);
    this.handlers.frames.deliver(appId, channel, frame, exceptSocketId, formatPosition(position));
  }

  writesNow(): boolean {
    return true;
  }

  /** One process: nothing goes across; a recorded event is numbered and kept now, delivered with its position later. */
  publishAcross(events: readonly Outgoing[]): LocalDelivery[] {
    const out: LocalDelivery[] = [];
    for (const e of events) {
      const position = e.policy ? formatPosition(this.history.record(e.appId, e.channel, e.frame, e.exceptSocketId, e.policy)) : undefined;
      out.push({ appId: e.appId, channel: e.channel, frame: e.frame, exceptSocketId: e.exceptSocketId, position, bytes: undefined, audience: 'all' });
    }
    return out;
  }

  /** One process: published is delivered. */
  written(): undefined {
    return undefined;
  }

  addInterest(): void {}

  /** One process: delivery is synchronous and the feed never breaks. */
  async interestReady(): Promise<number> {
    return 0;
  }

  async caughtUp(): Promise<boolean> {
    return true;
  }

  removeInterest(): void {}

  broadcastCommand(cmd: NodeCommand): void {
    this.handlers.commands.command(cmd);
  }

  isHealthy(): boolean {
    return true;
  }

  async close(): Promise<void> {}
}
