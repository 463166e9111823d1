// Log-linear latency histogram in microseconds: exact below 2048 µs, then 1024 sub-buckets per power of
// two (relative error < 0.1 %). Mergeable across processes as a sparse [index, count] list.
const SUB = 1024;
const LINEAR = 2 * SUB;
const SIZE = LINEAR + 22 * SUB; // covers up to ~2^32 µs (over an hour)

export class Histogram {
  counts = new Float64Array(SIZE);
  total = 0;
  max = 0; // µs
  min = Infinity; // µs
  sum = 0; // µs

  recordMs(ms: number): void {
    let us = Math.round(ms * 1000);
    if (us < 0) us = 0; // clock granularity; cannot happen with a monotonic clock but keep the data sane
    this.counts[Histogram.index(us)]++;
    this.total++;
    this.sum += us;
    if (us > this.max) this.max = us;
    if (us < this.min) this.min = us;
  }

  static index(us: number): number {
    if (us < LINEAR) return us;
    const bits = 32 - Math.clz32(Math.min(us, 0xffffffff) >>> 0);
    const shift = bits - 11;
    const idx = LINEAR + (shift - 1) * SUB + ((us >>> shift) - SUB);
    return Math.min(idx, SIZE - 1);
  }

  /** Middle of the bucket, in µs. */
  static value(idx: number): number {
    if (idx < LINEAR) return idx;
    const k = idx - LINEAR;
    const shift = Math.floor(k / SUB) + 1;
    const mant = (k % SUB) + SUB;
    return (mant << shift) + (1 << (shift - 1));
  }

  /** q in [0,1]; result in ms. */
  quantileMs(q: number): number {
    if (this.total === 0) return NaN;
    const target = Math.max(1, Math.ceil(q * this.total));
    let seen = 0;
    for (let i = 0; i < SIZE; i++) {
      seen += this.counts[i];
      if (seen >= target) return Math.min(Histogram.value(i), this.max) / 1000;
    }
    return this.max / 1000;
  }

  toSparse(): { buckets: [number, number][]; total: number; max: number; min: number; sum: number } {
    const buckets: [number, number][] = [];
    for (let i = 0; i < SIZE; i++) if (this.counts[i]) buckets.push([i, this.counts[i]]);
    return { buckets, total: this.total, max: this.max, min: this.min, sum: this.sum };
  }

  merge(s: { buckets: [number, number][]; total: number; max: number; min: number; sum: number }): void {
    for (const [i, c] of s.buckets) this.counts[i] += c;
    this.total += s.total;
    this.sum += s.sum;
    if (s.max > this.max) this.max = s.max;
    if (s.total && s.min < this.min) this.min = s.min;
  }
}

export function median(xs: number[]): number {
  const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (!v.length) return NaN;
  const m = v.length >> 1;
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}
