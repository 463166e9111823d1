// One clock for every bench process: CLOCK_MONOTONIC via process.hrtime, in milliseconds with a
// fraction. It is system-wide, so a timestamp taken in the publisher process can be compared with one
// taken in a subscriber process on the same machine (unlike Date.now(), which has 1 ms steps and can
// jump, or performance.now(), whose origin differs per process).
export function nowMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}
