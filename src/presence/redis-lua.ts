// Lua scripts of the Redis presence store. Each runs atomically, so two nodes racing can never both
// see "first socket of this user" or "last subscriber of this channel", and each writes the webhooks
// of the transitions it makes (channel_occupied, member_added, member_removed, channel_vacated) into
// the endpoints' queues in the same step: the queues hold them in the order they happened,
// whichever nodes made them (README "Webhooks"). The node names the queues that want each transition
// of a channel (a "route", from the endpoints' event types and filters) in the arguments.
//
// Keys (named in redis/keys.ts), given to each script in KEYS:
//   N  one node's share: subs (RedisKeys.nodeSubscriptions: "<app>\n<channel>" → its sockets there)
//      and pres (RedisKeys.nodePresence: "<app>\n<channel>\n<socket>\n<user>", its presence sockets)
//   C  one channel: counts (RedisKeys.appSubscriptions: the app's hash, channel → sockets cluster-wide)
//      and its presence hashes sockets, users, infos (RedisKeys.presence)
//   the stream of every webhook queue a route names (RedisKeys.webhookStream), last
//   nodes (RedisKeys.nodes), for dropNode's lease check
// dropNode, replayShare and restoreShare also reach the C keys of every channel in a share, found in
// the data (see redis/keys.ts): they are given the prefix and build those names with derivedKeysLua.
//
// ARGV of every script: the webhook doorbell channel, now (ms), the number of webhook queues and their
// names (their streams being the last KEYS, in that order), then the script's own arguments from A on.
// A route is four lists (occupied, vacated, added, removed), each its length and then queue names.
// A share (what one node holds) is nSubs, (app channel sockets)*nSubs, nPres, (app channel socket user info)*nPres.
import { leaseLua } from '../cluster/node-lease.js';
import type { LuaScript } from '../redis/clients.js';
import { derivedKeysLua } from '../redis/keys.js';

/** Lua: split(s) on newlines, readList(i) and readRoute(i) (a route from ARGV[i] on, and the index after it). */
export const parseLua = `
local function split(s)
  local t, i = {}, 1
  while true do
    local j = string.find(s, '\\n', i, true)
    if not j then table.insert(t, string.sub(s, i)); return t end
    table.insert(t, string.sub(s, i, j - 1)); i = j + 1
  end
end

local function readList(i)
  local t = {}
  for k = 1, tonumber(ARGV[i]) do t[k] = ARGV[i + k] end
  return t, i + #t + 1
end
local function readRoute(i)
  local r = {}
  r.occupied, i = readList(i)
  r.vacated, i = readList(i)
  r.added, i = readList(i)
  r.removed, i = readList(i)
  return r, i
end
`;

/** Lua: the four transitions' webhooks, given hook(queues, ev) (defined before it: where they go). */
export const transitionsLua = `local function occupied(route, channel) hook(route and route.occupied, { name = 'channel_occupied', channel = channel }) end
local function vacated(route, channel) hook(route and route.vacated, { name = 'channel_vacated', channel = channel }) end
local function memberAdded(route, channel, user) hook(route and route.added, { name = 'member_added', channel = channel, user_id = user }) end
local function memberRemoved(route, channel, user) hook(route and route.removed, { name = 'member_removed', channel = channel, user_id = user }) end

`;

const lib = `
local W = { bell = ARGV[1], now = tonumber(ARGV[2]), streams = {}, rung = {}, queues = {} }
local A
do
  local n = tonumber(ARGV[3])
  for k = 1, n do W.streams[ARGV[3 + k]] = KEYS[#KEYS - n + k] end
  A = 4 + n
end${parseLua}-- Webhooks: appended to each wanting queue now; one doorbell at the end names every queue written.
local function hook(queues, ev)
  if not queues or #queues == 0 then return end
  local d = cjson.encode({ t = W.now, ev = ev })
  for _, q in ipairs(queues) do
    redis.call('XADD', W.streams[q], '*', 'd', d)
    if not W.rung[q] then W.rung[q] = true; table.insert(W.queues, q) end
  end
end
local function ring()
  if #W.queues > 0 then redis.call('PUBLISH', W.bell, table.concat(W.queues, '\\n')) end
end
${transitionsLua}local function join(N, C, node, app, channel, socket, user, info)
  redis.call('SADD', N.pres, app .. '\\n' .. channel .. '\\n' .. socket .. '\\n' .. user)
  if redis.call('HSETNX', C.sockets, node .. '|' .. socket, user) == 0 then return 0 end
  if redis.call('HINCRBY', C.users, user, 1) == 1 then
    redis.call('HSET', C.infos, user, info)
    return 1
  end
  return 0
end
-- -1: the socket was not there; 1: it was the user's last socket; 0: otherwise.
local function leave(N, C, node, app, channel, socket, user)
  redis.call('SREM', N.pres, app .. '\\n' .. channel .. '\\n' .. socket .. '\\n' .. user)
  if redis.call('HDEL', C.sockets, node .. '|' .. socket) == 0 then return -1 end
  if redis.call('HINCRBY', C.users, user, -1) <= 0 then
    redis.call('HDEL', C.users, user)
    redis.call('HDEL', C.infos, user)
    return 1
  end
  return 0
end
local function sub(N, C, app, channel, n)
  redis.call('HINCRBY', N.subs, app .. '\\n' .. channel, n)
  return redis.call('HINCRBY', C.counts, channel, n)
end
local function total(C, channel) return tonumber(redis.call('HGET', C.counts, channel) or '0') end
-- One socket of this node fewer: the count after, and whether it changed (not if this node had none there).
local function unsub(N, C, app, channel)
  local field = app .. '\\n' .. channel
  local mine = tonumber(redis.call('HGET', N.subs, field) or '0')
  if mine <= 0 then return total(C, channel), false end
  if mine == 1 then redis.call('HDEL', N.subs, field) else redis.call('HINCRBY', N.subs, field, -1) end
  local t = redis.call('HINCRBY', C.counts, channel, -1)
  if t <= 0 then redis.call('HDEL', C.counts, channel); return 0, true end
  return t, true
end
`;

// Whole shares: only the scripts that remove or replace one carry these. Their first own argument is
// the prefix: the channels of a share are found in the data, their keys built here (redis/keys.ts).
const shareLib = `${derivedKeysLua}
local P = ARGV[A]
local function channelKeys(app, channel)
  local C = presenceKeys(P, app, channel)
  C.counts = appSubscriptionsKey(P, app)
  return C
end
-- nRoutes, then (app channel route)*nRoutes → "<app>\\n<channel>" → route
local function readRoutes(i)
  local routes = {}
  local n = tonumber(ARGV[i])
  i = i + 1
  for _ = 1, n do
    local key = ARGV[i] .. '\\n' .. ARGV[i + 1]
    routes[key], i = readRoute(i + 2)
  end
  return routes, i
end
local function readShare(i)
  local subs, pres = {}, {}
  for _ = 1, tonumber(ARGV[i]) do
    table.insert(subs, { ARGV[i + 1], ARGV[i + 2], tonumber(ARGV[i + 3]) })
    i = i + 3
  end
  i = i + 1
  for _ = 1, tonumber(ARGV[i]) do
    table.insert(pres, { ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4], ARGV[i + 5] })
    i = i + 5
  end
  return subs, pres, i + 1
end

-- Removes a node's whole share (no events: see reshare).
local function drop(N, node)
  for _, m in ipairs(redis.call('SMEMBERS', N.pres)) do
    local f = split(m)
    leave(N, channelKeys(f[1], f[2]), node, f[1], f[2], f[3], f[4])
  end
  local h = redis.call('HGETALL', N.subs)
  for i = 1, #h, 2 do
    local f = split(h[i])
    local counts = appSubscriptionsKey(P, f[1])
    if redis.call('HINCRBY', counts, f[2], -tonumber(h[i + 1])) <= 0 then redis.call('HDEL', counts, f[2]) end
  end
  redis.call('DEL', N.subs, N.pres)
end
local function write(N, node, subs, pres)
  for _, s in ipairs(subs) do sub(N, channelKeys(s[1], s[2]), s[1], s[2], s[3]) end
  for _, p in ipairs(pres) do join(N, channelKeys(p[1], p[2]), node, p[1], p[2], p[3], p[4], p[5]) end
end

-- Replaces a node's share with subs and pres (both empty: removes it) and returns what that changed,
-- channel by channel: each member_added ("a\\n<app>\\n<channel>\\n<user>\\n<info>"), each member_removed
-- ("m\\n<app>\\n<channel>\\n<user>"), then the channel's count if it changed ("c\\n<app>\\n<channel>\\n<n>").
-- Every channel and user the share had or has is compared before and after, against everything the
-- other nodes hold, so a user with a socket left elsewhere is not removed, and a channel others still
-- occupy is not vacated. The webhooks follow in the same order, channel_occupied first and
-- channel_vacated last.
local function reshare(N, node, subs, pres, routes)
  local chans, list = {}, {}
  local function chan(app, channel)
    local key = app .. '\\n' .. channel
    local c = chans[key]
    if not c then
      local C = channelKeys(app, channel)
      c = { app = app, channel = channel, key = key, C = C, before = total(C, channel), had = {}, users = {} }
      chans[key] = c
      table.insert(list, c)
    end
    return c
  end
  local function user(c, u)
    if c.had[u] == nil then
      c.had[u] = redis.call('HEXISTS', c.C.users, u) == 1
      table.insert(c.users, u)
    end
  end
  for _, m in ipairs(redis.call('SMEMBERS', N.pres)) do
    local f = split(m)
    user(chan(f[1], f[2]), f[4])
  end
  local h = redis.call('HGETALL', N.subs)
  for i = 1, #h, 2 do
    local f = split(h[i])
    chan(f[1], f[2])
  end
  for _, s in ipairs(subs) do chan(s[1], s[2]) end
  for _, p in ipairs(pres) do user(chan(p[1], p[2]), p[4]) end
  drop(N, node)
  write(N, node, subs, pres)
  local out = {}
  for _, c in ipairs(list) do
    local route = routes[c.key]
    local after = total(c.C, c.channel)
    if c.before == 0 and after > 0 then occupied(route, c.channel) end
    for _, u in ipairs(c.users) do
      if not c.had[u] and redis.call('HEXISTS', c.C.users, u) == 1 then
        memberAdded(route, c.channel, u)
        table.insert(out, 'a\\n' .. c.key .. '\\n' .. u .. '\\n' .. redis.call('HGET', c.C.infos, u))
      end
    end
    for _, u in ipairs(c.users) do
      if c.had[u] and redis.call('HEXISTS', c.C.users, u) == 0 then
        memberRemoved(route, c.channel, u)
        table.insert(out, 'm\\n' .. c.key .. '\\n' .. u)
      end
    end
    if after ~= c.before then
      if after == 0 then vacated(route, c.channel) end
      table.insert(out, 'c\\n' .. c.key .. '\\n' .. after)
    end
  end
  ring()
  return out
end
`;

// Every script's key count varies with the webhook queues its routes name: the caller passes it first.

/** KEYS: N.subs C.counts, streams. ARGV: head app channel route → cluster-wide count after adding one socket */
export const addSubscription: LuaScript = {
  keys: 'counted',
  lua: `${lib}
local N, C = { subs = KEYS[1] }, { counts = KEYS[2] }
local route = readRoute(A + 2)
local count = sub(N, C, ARGV[A], ARGV[A + 1], 1)
if count == 1 then occupied(route, ARGV[A + 1]) end
ring()
return count`,
};

/** KEYS: N.subs C.counts, streams. ARGV: head app channel route → count after removing one socket of this node (unchanged if it had none) */
export const removeSubscription: LuaScript = {
  keys: 'counted',
  lua: `${lib}
local N, C = { subs = KEYS[1] }, { counts = KEYS[2] }
local route = readRoute(A + 2)
local count, changed = unsub(N, C, ARGV[A], ARGV[A + 1])
if changed and count == 0 then vacated(route, ARGV[A + 1]) end
ring()
return count`,
};

const channelWide = `
local N = { subs = KEYS[1], pres = KEYS[2] }
local C = { counts = KEYS[3], sockets = KEYS[4], users = KEYS[5], infos = KEYS[6] }
local node, app, channel, socket, user = ARGV[A], ARGV[A + 1], ARGV[A + 2], ARGV[A + 3], ARGV[A + 4]
`;

/**
 * KEYS: N.subs N.pres C.counts C.sockets C.users C.infos, streams. ARGV: head node app channel socket
 * user info maxMembers route → { -1 } when a new member would exceed maxMembers (nothing recorded),
 * else { count after, added (0|1), flat hash of members }
 */
export const subscribePresence: LuaScript = {
  keys: 'counted',
  lua: `${lib}${channelWide}
if redis.call('HEXISTS', C.users, user) == 0 and redis.call('HLEN', C.users) >= tonumber(ARGV[A + 6]) then return { -1 } end
local route = readRoute(A + 7)
local count = sub(N, C, app, channel, 1)
local added = join(N, C, node, app, channel, socket, user, ARGV[A + 5])
if count == 1 then occupied(route, channel) end
if added == 1 then memberAdded(route, channel, user) end
ring()
return { count, added, redis.call('HGETALL', C.infos) }`,
};

/**
 * KEYS: N.subs N.pres C.counts C.sockets C.users C.infos, streams. ARGV: head node app channel socket
 * user route → { last (1|0, -1: socket not held, nothing changed), count after }
 */
export const unsubscribePresence: LuaScript = {
  keys: 'counted',
  lua: `${lib}${channelWide}
local last = leave(N, C, node, app, channel, socket, user)
if last < 0 then return { -1, total(C, channel) } end
local route = readRoute(A + 5)
local count, changed = unsub(N, C, app, channel)
if last == 1 then memberRemoved(route, channel, user) end
if changed and count == 0 then vacated(route, channel) end
ring()
return { last, count }`,
};

const online = `
local N = { pres = KEYS[1] }
local C = { sockets = KEYS[2], users = KEYS[3], infos = KEYS[4] }
`;

/**
 * The uncounted online set (no webhooks). KEYS: N.pres C.sockets C.users C.infos. ARGV: head node app
 * channel socket user info → { added (0|1), flat hash of members }
 */
export const joinPresence: LuaScript = {
  keys: 'counted',
  lua: `${lib}${online}
local added = join(N, C, ARGV[A], ARGV[A + 1], ARGV[A + 2], ARGV[A + 3], ARGV[A + 4], ARGV[A + 5])
return { added, redis.call('HGETALL', C.infos) }`,
};

/** KEYS: N.pres C.sockets C.users C.infos. ARGV: head node app channel socket user → 1 when that was the user's last socket */
export const leavePresence: LuaScript = {
  keys: 'counted',
  lua: `${lib}${online}
return leave(N, C, ARGV[A], ARGV[A + 1], ARGV[A + 2], ARGV[A + 3], ARGV[A + 4])`,
};

/**
 * KEYS: nodes N.subs N.pres, streams; the C keys of every channel in the share are found in it (a
 * cross-slot step, see redis/keys.ts). ARGV: head prefix node routes → the due events of removing the
 * node's share (see reshare), or nothing when its lease is still valid (it renewed in time) or another
 * survivor removed it first.
 */
export const dropNode: LuaScript = {
  keys: 'counted',
  lua: `${lib}${shareLib}${leaseLua}
if leaseValid(KEYS[1], ARGV[A + 1], W.now) then return {} end
return reshare({ subs = KEYS[2], pres = KEYS[3] }, ARGV[A + 1], {}, {}, readRoutes(A + 2))`,
};

/**
 * Replaces this node's share with its own record of it, reporting every change that makes (after a
 * reconnect: what this node's sockets did while Redis could not be told). KEYS: N.subs N.pres, streams;
 * the C keys of every channel in either share are found in them (a cross-slot step, see
 * redis/keys.ts). ARGV: head prefix node share routes
 */
export const replayShare: LuaScript = {
  keys: 'counted',
  lua: `${lib}${shareLib}
local subs, pres, i = readShare(A + 2)
return reshare({ subs = KEYS[1], pres = KEYS[2] }, ARGV[A + 1], subs, pres, readRoutes(i))`,
};

/**
 * Writes back this node's share as Redis last held it, silently (after Redis lost its data: the state
 * every node's clients were told is rebuilt before any change is replayed). KEYS: N.subs N.pres; the C
 * keys of every channel in either share are found in them (a cross-slot step, see redis/keys.ts).
 * ARGV: head prefix node share
 */
export const restoreShare: LuaScript = {
  keys: 'counted',
  lua: `${lib}${shareLib}
local N = { subs = KEYS[1], pres = KEYS[2] }
local subs, pres = readShare(A + 2)
drop(N, ARGV[A + 1])
write(N, ARGV[A + 1], subs, pres)
return 1`,
};
