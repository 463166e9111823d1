// A session's subscriptions: the lone one held directly, a Map from the second on, and back to the
// lone one when one is left; each channel found, counted and listed the same way in either form.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Subscription, subscriptions, userIdOf, type Subscriptions } from './member.js';

test('one subscription is held as itself; a second makes a Map; leaving down to one goes back', () => {
  const a = new Subscription('a');
  const b = new Subscription('presence-b', 'u1');
  let subs: Subscriptions = undefined;
  assert.equal(subscriptions.size(subs), 0);
  assert.deepEqual(subscriptions.names(subs), []);

  subs = subscriptions.with(subs, a);
  assert.equal(subs, a);
  assert.equal(subscriptions.get(subs, 'a'), a);
  assert.equal(subscriptions.get(subs, 'presence-b'), undefined);
  assert.equal(subscriptions.size(subs), 1);

  subs = subscriptions.with(subs, b);
  assert.ok(subs instanceof Map);
  assert.equal(subscriptions.get(subs, 'a'), a);
  assert.equal(userIdOf(subscriptions.get(subs, 'presence-b')!), 'u1');
  assert.equal(subscriptions.size(subs), 2);
  assert.deepEqual(subscriptions.names(subs), ['a', 'presence-b']);

  subs = subscriptions.without(subs, 'a');
  assert.equal(subs, b);
  assert.equal(subscriptions.without(subs, 'unknown'), b, 'an unknown channel leaves it as it was');
  subs = subscriptions.without(subs, 'presence-b');
  assert.equal(subs, undefined);
  assert.equal(subscriptions.size(subs), 0);
});

test('subscribing again to the same channel replaces its subscription without growing the set', () => {
  const first = new Subscription('a');
  const again = new Subscription('a');
  let subs = subscriptions.with(undefined, first);
  subs = subscriptions.with(subs, again);
  assert.equal(subs, again);
  subs = subscriptions.with(subs, new Subscription('b'));
  subs = subscriptions.with(subs, first);
  assert.equal(subscriptions.size(subs), 2);
  assert.equal(subscriptions.get(subs, 'a'), first);
});

test('names() is a copy: every channel can be left while going through it', () => {
  let subs: Subscriptions = undefined;
  for (const c of ['a', 'b', 'c']) subs = subscriptions.with(subs, new Subscription(c));
  for (const c of subscriptions.names(subs)) subs = subscriptions.without(subs, c);
  assert.equal(subs, undefined);
});

test('a plain subscription is its channel name, alone or beside others', () => {
  const b = new Subscription('presence-b', 'u1');
  let subs: Subscriptions = subscriptions.with(undefined, 'a');
  assert.equal(subs, 'a');
  assert.equal(subscriptions.get(subs, 'a'), 'a');
  assert.equal(subscriptions.get(subs, 'ab'), undefined);
  assert.equal(userIdOf('a'), undefined);
  subs = subscriptions.with(subs, b);
  subs = subscriptions.with(subs, 'c');
  assert.deepEqual(subscriptions.names(subs), ['a', 'presence-b', 'c']);
  assert.equal(subscriptions.get(subs, 'c'), 'c');
  subs = subscriptions.without(subs, 'presence-b');
  subs = subscriptions.without(subs, 'a');
  assert.equal(subs, 'c', 'back to the lone plain subscription, its name');
  assert.equal(subscriptions.without(subs, 'c'), undefined);
});

test('a presence or recovering subscription has no presence or recovery fields of its own until they are set', () => {
  const recovering = new Subscription('a');
  assert.deepEqual(Object.keys(recovering), ['channel']);
  recovering.positioned = true;
  assert.equal(recovering.positioned, true);
  assert.deepEqual(Object.keys(new Subscription('presence-a', 'u1')).sort(), ['channel', 'userId']);
});
