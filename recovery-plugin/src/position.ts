// Positions, "<epoch>:<serial>": serials count a channel's events within one unbroken numbering (the
// epoch), so two positions compare only when their epochs are the same.

export interface Position {
  epoch: string;
  serial: number;
}

const POSITION_RE = /^([0-9a-z]+):(\d{1,15})$/;

/** The position a server string names, or undefined when it names none (null: recovery off). */
export function parsePosition(text: unknown): Position | undefined {
  if (typeof text !== 'string') return undefined;
  const m = POSITION_RE.exec(text);
  return m ? { epoch: m[1], serial: Number(m[2]) } : undefined;
}

export function formatPosition(p: Position): string {
  return `${p.epoch}:${p.serial}`;
}

/** Whether an event at `p` was already seen by a client at `last`: same numbering, not newer. */
export function alreadySeen(p: Position, last: Position | undefined): boolean {
  return last !== undefined && last.epoch === p.epoch && p.serial <= last.serial;
}
