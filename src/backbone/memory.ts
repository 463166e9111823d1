import type { Backbone, Deliver, NodeCommand } from './backbone.js';

/** Single-node backbone: publishing is local delivery. */
export class MemoryBackbone implements Backbone {
  private deliver: Deliver = () => {};
  private onCommand: (cmd: NodeCommand) => void = () => {};

  async start(deliver: Deliver, onCommand: (cmd: NodeCommand) => void): Promise<void> {
    this.deliver = deliver;
    this.onCommand = onCommand;
  }

  publish(appId: string, channel: string, frame: string, exceptSocketId?: string): void {
    this.deliver(appId, channel, frame, exceptSocketId);
  }

  addInterest(): void {}
  removeInterest(): void {}

  broadcastCommand(cmd: NodeCommand): void {
    this.onCommand(cmd);
  }

  isHealthy(): boolean {
    return true;
  }

  async close(): Promise<void> {}
}
