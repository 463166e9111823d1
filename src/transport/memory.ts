// An in-process transport: connections whose frames are kept in arrays. The session logic runs on it
// exactly as on a socket, so its unit tests need no network.
import type { Connection, Fanout } from '../hub/connection.js';
import { TopicTable } from './topic-table.js';

export class MemoryFanout implements Fanout {
  /** @internal membership kept for the connections */
  readonly topics = new TopicTable<MemoryConnection>();

  connect(opts: { origin?: string; remoteAddress?: string } = {}): MemoryConnection {
    return new MemoryConnection(this, opts.remoteAddress ?? '127.0.0.1', opts.origin ?? '');
  }

  publish(topic: string, frame: string, except?: Connection): void {
    for (const c of this.topics.members(topic) ?? []) if (c !== except) c.send(frame);
  }
}

export class MemoryConnection implements Connection {
  get transport(): string {
    return 'memory';
  }
  /** Every frame sent to the client, in order. */
  readonly sent: string[] = [];
  closed = false;
  closeCode?: number;
  closeReason?: string;
  /** What bufferedAmount() reports (tests set it to play a slow reader). */
  buffered = 0;
  private onClose?: (code: number) => void;

  constructor(
    readonly fanout: MemoryFanout,
    readonly remoteAddress: string,
    readonly origin: string,
  ) {}

  /** Called once when the connection closes, as a transport reports a close to its sessions. */
  whenClosed(fn: (code: number) => void): void {
    this.onClose = fn;
  }

  send(frame: string): void {
    if (!this.closed) this.sent.push(frame);
  }

  close(code: number, reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.closeCode = code;
    this.closeReason = reason;
    this.fanout.topics.leaveAll(this);
    this.onClose?.(code);
  }

  join(topic: string): void {
    if (!this.closed) this.fanout.topics.join(topic, this);
  }

  leave(topic: string): void {
    this.fanout.topics.leave(topic, this);
  }

  bufferedAmount(): number {
    return this.buffered;
  }

  /** The frames sent so far, parsed. */
  frames(): { event: string; channel?: string; data?: unknown; user_id?: string }[] {
    return this.sent.map((f) => JSON.parse(f));
  }
}
