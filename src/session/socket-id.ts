import { randomInt } from 'node:crypto';

/** Two runs of digits joined by a dot, as the SDKs validate (spec §1.4); unique with overwhelming odds. */
export function newSocketId(): string {
  return `${randomInt(1, 2 ** 47)}.${randomInt(1, 2 ** 47)}`;
}
