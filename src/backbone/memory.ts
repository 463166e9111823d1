import type { Backbone, BackboneHandlers, NodeCommand } from './backbone.js';

const idle: BackboneHandlers = { frames: { deliver() {} }, commands: { command() {} } };

/** Single-node backbone: publishing is local delivery. */
export class MemoryBackbone implements Backbone {
  private handlers = idle;
  readonly received = 0;
  readonly buffered = { events: 0, bytes: 0 };
  readonly refused = 0;

  async start(handlers: BackboneHandlers): Promise<void> {
    this.handlers = handlers;
  }

  hasRoom(): boolean {
    return true;
  }

  publish(appId: string, channel: string, frame: string, exceptSocketId?: string): void {
    this.handlers.frames.deliver(appId, channel, frame, exceptSocketId);
  }

  addInterest(): void {}
  removeInterest(): void {}

  broadcastCommand(cmd: NodeCommand): void {
    this.handlers.commands.command(cmd);
  }

  isHealthy(): boolean {
    return true;
  }

  async close(): Promise<void> {}
}
