// One history read for the recovering subscriptions that ask the same at once, and never one that
// began before a subscription's frames were held, or in an earlier stretch of the node's feed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChannelHistory, HistoryPage, HistoryPolicy } from '../history/history.js';
import { MemoryHistory } from '../history/memory.js';
import { SharedReads } from './shared-reads.js';

const policy: HistoryPolicy = { size: 10, ttlMs: 60_000 };

/** The memory history, counting reads and answering only when released. */
class CountedHistory implements ChannelHistory {
  readonly inner = new MemoryHistory();
  reads = 0;
  private gates: (() => void)[] = [];
  async read(appId: string, channel: string, afterSerial: number, limit: number, p: HistoryPolicy): Promise<HistoryPage> {
    this.reads++;
    const page = await this.inner.read(appId, channel, afterSerial, limit, p);
    await new Promise<void>((r) => this.gates.push(r));
    return page;
  }
  /** Answers the reads issued so far, once they reached the gate. */
  async open(): Promise<void> {
    await new Promise((r) => setImmediate(r));
    for (const g of this.gates.splice(0)) g();
  }
}

test('reads asked for the same channel, position and stretch while one is in flight share it', async () => {
  const history = new CountedHistory();
  const reads = new SharedReads(history);
  history.inner.record('a', 'c', 'f1', undefined, policy);
  const mark = reads.mark();
  const pages = [reads.read(mark, 1, 'a', 'c', 0, 5, policy), reads.read(mark, 1, 'a', 'c', 0, 5, policy)];
  assert.equal(history.reads, 1);
  await history.open();
  const [p1, p2] = await Promise.all(pages);
  assert.equal(p1, p2);
  assert.equal(p1.events.length, 1);
  reads.read(reads.mark(), 1, 'a', 'c', 0, 5, policy);
  assert.equal(history.reads, 2, 'a settled read is not reused');
  await history.open();
});

test('a subscription never shares a read issued before its mark, or in another stretch, or of another position', async () => {
  const history = new CountedHistory();
  const reads = new SharedReads(history);
  const early = reads.mark();
  void reads.read(early, 1, 'a', 'c', 0, 5, policy);
  const late = reads.mark(); // its frames are held from here: the read in flight may have missed some
  void reads.read(late, 1, 'a', 'c', 0, 5, policy);
  assert.equal(history.reads, 2);
  void reads.read(late, 2, 'a', 'c', 0, 5, policy);
  void reads.read(late, 2, 'a', 'c', 3, 5, policy);
  void reads.read(late, 2, 'a', 'other', 3, 5, policy);
  assert.equal(history.reads, 5);
  void reads.read(late, 2, 'a', 'other', 3, 5, policy);
  assert.equal(history.reads, 5, 'the same question after the same mark shares');
  await history.open();
});
