// Node commands (what must reach every node, not only the nodes with a channel subscribed) go to the
// handler registered for their type: each module registers its own commands at start, so none of them
// piles into another's code. A command of a type this node has no handler for (a newer node's, in a
// cluster being upgraded) is logged and ignored.
import type { Logger } from 'pino';
import type { NodeCommand, NodeCommandHandler } from './backbone.js';

type CommandOf<T extends NodeCommand['type']> = Extract<NodeCommand, { type: T }>;

export class CommandRouter implements NodeCommandHandler {
  private readonly handlers = new Map<string, (cmd: NodeCommand) => void>();

  constructor(private readonly log: Logger) {}

  /** `handler` receives every command of `type`, from every node, this one included. */
  on<T extends NodeCommand['type']>(type: T, handler: (cmd: CommandOf<T>) => void): void {
    if (this.handlers.has(type)) throw new Error(`node command ${type} has a handler already`);
    this.handlers.set(type, handler as (cmd: NodeCommand) => void);
  }

  command(cmd: NodeCommand): void {
    const handler = this.handlers.get(cmd?.type);
    if (!handler) return void this.log.debug({ type: cmd?.type }, 'node command without a handler ignored');
    try {
      handler(cmd);
    } catch (err) {
      // A failing handler must not stop the backbone's receive loop.
      this.log.warn({ err, type: cmd.type }, 'node command failed');
    }
  }
}
