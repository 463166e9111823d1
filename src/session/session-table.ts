// The node's live sessions, each in a numbered slot that its socket id names: `<slot>.<random>`, two
// runs of digits as the SDKs validate (spec §1.4). A session is found by its socket id (the hub's
// lookup of a sender to leave out) without a map entry per session: a slot is 8 bytes of an array
// where a Map entry took ~48. A freed slot is reused; its next session's random part differs, so an
// old socket id never finds the new session.
import { randomInt } from 'node:crypto';

export class SessionTable<S extends { readonly socketId: string }> {
  private readonly slots: (S | undefined)[] = [];
  private readonly free: number[] = [];

  /**
   * Puts `s` in a free slot and returns its socket id: the slot, a dot, and up to 15 random digits
   * (2^47 values: two sessions in the cluster share an id only if they share a slot number, on two
   * nodes, and the draw). At most 23 characters (a slot under 10^7), 40 bytes of heap.
   */
  place(s: S): string {
    const slot = this.free.pop() ?? this.slots.length;
    this.slots[slot] = s;
    return `${slot}.${randomInt(1, 2 ** 47)}`;
  }

  /** The live session with this socket id, if it is on this node. */
  get(socketId: string): S | undefined {
    const s = this.slots[slotOf(socketId)];
    return s !== undefined && s.socketId === socketId ? s : undefined;
  }

  /** Frees `s`'s slot; false when it is not there (removed already). */
  remove(s: S): boolean {
    const slot = slotOf(s.socketId);
    if (slot < 0 || this.slots[slot] !== s) return false;
    this.slots[slot] = undefined;
    this.free.push(slot);
    return true;
  }

  *values(): IterableIterator<S> {
    for (const s of this.slots) if (s !== undefined) yield s;
  }
}

/** The slot a socket id names, -1 when it names none. */
function slotOf(socketId: string): number {
  const dot = socketId.indexOf('.');
  if (dot < 1 || dot > 9) return -1;
  const slot = Number(socketId.slice(0, dot));
  return Number.isInteger(slot) ? slot : -1;
}
