// The node's sessions by socket id: ids name a slot, a freed slot is reused under a new id, and an
// id that is not a live session's finds nothing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SessionTable } from './session-table.js';

class S {
  socketId = '';
}

function placed(table: SessionTable<S>): S {
  const s = new S();
  s.socketId = table.place(s);
  return s;
}

test('a session is found by its socket id, two runs of digits; a closed one is not', () => {
  const table = new SessionTable<S>();
  const a = placed(table);
  const b = placed(table);
  assert.match(a.socketId, /^\d+\.\d+$/);
  assert.ok(a.socketId.length <= 23);
  assert.equal(table.get(a.socketId), a);
  assert.equal(table.get(b.socketId), b);
  assert.deepEqual([...table.values()], [a, b]);
  assert.equal(table.remove(a), true);
  assert.equal(table.remove(a), false, 'removed once');
  assert.equal(table.get(a.socketId), undefined);
  assert.deepEqual([...table.values()], [b]);
});

test("a freed slot is reused, and the old socket id does not find its new session", () => {
  const table = new SessionTable<S>();
  const a = placed(table);
  table.remove(a);
  const c = placed(table);
  assert.equal(c.socketId.split('.')[0], a.socketId.split('.')[0], 'same slot');
  assert.notEqual(c.socketId, a.socketId);
  assert.equal(table.get(a.socketId), undefined);
  assert.equal(table.get(c.socketId), c);
});

test('ids that name no slot find nothing', () => {
  const table = new SessionTable<S>();
  const a = placed(table);
  const random = a.socketId.split('.')[1];
  for (const id of ['', '.', `.${random}`, `x.${random}`, `1e0.${random}`, `0${a.socketId}`, `-0.${random}`, `${a.socketId}1`, '123456789012.1']) {
    assert.equal(table.get(id), undefined, id);
  }
});
