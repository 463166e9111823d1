// Lua scripts of the Redis Cluster presence store (redis-cluster.ts). A channel's step is one script in
// the channel's slot: its count (per node too), its presence members, the member limit, and the
// webhooks of the transitions it makes, appended to the channel's pending list with the channel's next
// sequence number (an outbox). The node then moves the pending transitions into the webhook streams
// (state slot, `moveWebhooks`), which takes only those above the last sequence number it moved for
// that channel: each transition reaches the streams once, in the channel's order, whichever node moves
// it and however often. A node's share and each app's index of occupied channels are in the state slot,
// written before a channel step that adds and after one that removes, so a node's share always names
// every channel where Redis may hold some of its sockets.
//
// Channel scripts: KEYS count nodes sockets users infos pending seq (RedisKeys.channelState).
// ARGV: now node app channel, then the script's own arguments from A = 5 on; a route (four lists:
// occupied, vacated, added, removed, see redis-lua.ts) last. Each returns, last, how many transitions
// it appended to the pending list (0: nothing to move).
import { leaseLua } from '../cluster/node-lease.js';
import type { LuaScript } from '../redis/clients.js';
import { clusterDerivedKeysLua } from '../redis/keys.js';
import { parseLua, transitionsLua } from './redis-lua.js';

/**
 * How long a channel's last sequence number, and the record of the last one moved to the streams, are
 * kept after their last use: a node that read a channel's pending list and moves it later than this
 * could move some twice. (Kept for ever, they would grow with every channel that ever had a webhook.)
 */
export const SEQ_TTL_MS = 3_600_000;

const channelLib = `
local K = { count = KEYS[1], nodes = KEYS[2], sockets = KEYS[3], users = KEYS[4], infos = KEYS[5], pending = KEYS[6], seq = KEYS[7] }
local now, node, app, channel = tonumber(ARGV[1]), ARGV[2], ARGV[3], ARGV[4]
local A = 5
local queued = 0
${parseLua}
-- A transition's webhook: "<seq>\\n<number of queues>\\n<queue>...\\n<{t, ev} JSON>" appended to the pending list.
-- The sequence numbers rise with the shard's clock (µs), so that they keep rising when the number key
-- (and moveWebhooks' record of the last moved) expired while the channel was quiet.
local function nextSeq()
  local t = redis.call('TIME')
  local s = math.max(tonumber(redis.call('GET', K.seq) or '0') + 1, tonumber(t[1]) * 1000000 + tonumber(t[2]))
  s = string.format('%.0f', s)
  redis.call('SET', K.seq, s, 'PX', ${SEQ_TTL_MS})
  return s
end
local function hook(queues, ev)
  if not queues or #queues == 0 then return end
  local e = { nextSeq(), #queues }
  for _, q in ipairs(queues) do table.insert(e, q) end
  table.insert(e, cjson.encode({ t = now, ev = ev }))
  redis.call('RPUSH', K.pending, table.concat(e, '\\n'))
  queued = queued + 1
end
${transitionsLua}
local function total() return tonumber(redis.call('GET', K.count) or '0') end
-- This node's sockets in the channel changed by n: the count after.
local function count(n)
  if n == 0 then return total() end
  if redis.call('HINCRBY', K.nodes, node, n) <= 0 then redis.call('HDEL', K.nodes, node) end
  local t = redis.call('INCRBY', K.count, n)
  if t <= 0 then redis.call('DEL', K.count); return 0 end
  return t
end
-- One socket of this node fewer: the count after, and whether it changed (not if this node had none here).
local function uncount()
  if tonumber(redis.call('HGET', K.nodes, node) or '0') <= 0 then return total(), false end
  return count(-1), true
end
local function join(socket, user, info)
  if redis.call('HSETNX', K.sockets, node .. '|' .. socket, user) == 0 then return 0 end
  if redis.call('HINCRBY', K.users, user, 1) == 1 then
    redis.call('HSET', K.infos, user, info)
    return 1
  end
  return 0
end
-- -1: the socket was not there; 1: it was the user's last socket; 0: otherwise.
local function leave(socket, user)
  if redis.call('HDEL', K.sockets, node .. '|' .. socket) == 0 then return -1 end
  if redis.call('HINCRBY', K.users, user, -1) <= 0 then
    redis.call('HDEL', K.users, user)
    redis.call('HDEL', K.infos, user)
    return 1
  end
  return 0
end
`;

/** ARGV: head route → { count after adding one socket, queued } */
export const addSubscription: LuaScript = {
  keys: 7,
  lua: `${channelLib}
local c = count(1)
if c == 1 then occupied(readRoute(A), channel) end
return { c, queued }`,
};

/** ARGV: head route → { count after removing one socket of this node (unchanged if it had none), queued } */
export const removeSubscription: LuaScript = {
  keys: 7,
  lua: `${channelLib}
local c, changed = uncount()
if changed and c == 0 then vacated(readRoute(A), channel) end
return { c, queued }`,
};

/**
 * ARGV: head socket user info maxMembers route → { -1 } when a new member would exceed maxMembers
 * (nothing recorded), else { count after, added (0|1), flat hash of members, queued }
 */
export const subscribePresence: LuaScript = {
  keys: 7,
  lua: `${channelLib}
local socket, user = ARGV[A], ARGV[A + 1]
if redis.call('HEXISTS', K.users, user) == 0 and redis.call('HLEN', K.users) >= tonumber(ARGV[A + 3]) then return { -1 } end
local route = readRoute(A + 4)
local c = count(1)
local added = join(socket, user, ARGV[A + 2])
if c == 1 then occupied(route, channel) end
if added == 1 then memberAdded(route, channel, user) end
return { c, added, redis.call('HGETALL', K.infos), queued }`,
};

/** ARGV: head socket user route → { last (1|0, -1: socket not held, nothing changed), count after, queued } */
export const unsubscribePresence: LuaScript = {
  keys: 7,
  lua: `${channelLib}
local user = ARGV[A + 1]
local last = leave(ARGV[A], user)
if last < 0 then return { -1, total(), 0 } end
local route = readRoute(A + 2)
local c, changed = uncount()
if last == 1 then memberRemoved(route, channel, user) end
if changed and c == 0 then vacated(route, channel) end
return { last, c, queued }`,
};

/** The uncounted online set (no webhooks). ARGV: head socket user info → { added (0|1), flat hash of members } */
export const joinPresence: LuaScript = {
  keys: 7,
  lua: `${channelLib}
local added = join(ARGV[A], ARGV[A + 1], ARGV[A + 2])
return { added, redis.call('HGETALL', K.infos) }`,
};

/** ARGV: head socket user → 1 when that was the user's last socket */
export const leavePresence: LuaScript = {
  keys: 7,
  lua: `${channelLib}
return leave(ARGV[A], ARGV[A + 1])`,
};

/**
 * Sets this node's part of one channel: its sockets counted, and its presence sockets (those not given
 * leave, those given join), reporting what that changed as redis-lua.ts's reshare does for one channel:
 * each member_added ("a\\n<app>\\n<channel>\\n<user>\\n<info>"), each member_removed, then the count if it
 * changed, with their webhooks (channel_occupied first, channel_vacated last). A node's removal (0 and
 * none) and a rejoin's replay; silent 1 (a restore after Redis lost its data): no events, no webhooks.
 * ARGV: head silent sockets nPres (socket user info)*nPres route → { queued, events... }
 */
export const setNodePart: LuaScript = {
  keys: 7,
  lua: `${channelLib}
local silent = ARGV[A] == '1'
local n = tonumber(ARGV[A + 1])
local pres, i = {}, A + 3
for _ = 1, tonumber(ARGV[A + 2]) do
  table.insert(pres, { ARGV[i], ARGV[i + 1], ARGV[i + 2] })
  i = i + 3
end
local route = readRoute(i)
local before = total()
local users, had = {}, {}
local function touch(u)
  if had[u] == nil then
    had[u] = redis.call('HEXISTS', K.users, u) == 1
    table.insert(users, u)
  end
end
local mark = node .. '|'
local held = {}
local flat = redis.call('HGETALL', K.sockets)
for j = 1, #flat, 2 do
  if string.sub(flat[j], 1, #mark) == mark then
    table.insert(held, { string.sub(flat[j], #mark + 1), flat[j + 1] })
    touch(flat[j + 1])
  end
end
for _, p in ipairs(pres) do touch(p[2]) end
for _, h in ipairs(held) do leave(h[1], h[2]) end
local after = count(n - tonumber(redis.call('HGET', K.nodes, node) or '0'))
for _, p in ipairs(pres) do join(p[1], p[2], p[3]) end
if silent then return { 0 } end
local out = { 0 }
local key = app .. '\\n' .. channel
if before == 0 and after > 0 then occupied(route, channel) end
for _, u in ipairs(users) do
  if not had[u] and redis.call('HEXISTS', K.users, u) == 1 then
    memberAdded(route, channel, u)
    table.insert(out, 'a\\n' .. key .. '\\n' .. u .. '\\n' .. redis.call('HGET', K.infos, u))
  end
end
for _, u in ipairs(users) do
  if had[u] and redis.call('HEXISTS', K.users, u) == 0 then
    memberRemoved(route, channel, u)
    table.insert(out, 'm\\n' .. key .. '\\n' .. u)
  end
end
if after ~= before then
  if after == 0 then vacated(route, channel) end
  table.insert(out, 'c\\n' .. key .. '\\n' .. after)
end
out[1] = queued
return out`,
};

/** KEYS: pending. ARGV: seq → drops the head of the channel's pending list up to seq (moved to the streams). */
export const trimPending: LuaScript = {
  keys: 1,
  lua: `
local upto = tonumber(ARGV[1])
while true do
  local h = redis.call('LINDEX', KEYS[1], 0)
  if not h or tonumber(string.match(h, '^%d+')) > upto then break end
  redis.call('LPOP', KEYS[1])
end
return 1`,
};

/**
 * State slot. KEYS: moved (RedisKeys.webhookMoved of the channel), then the stream of each queue named.
 * ARGV: bell nQueues queues... entries... (the channel's pending list, in order) → appends to the
 * streams the entries above the last sequence number moved for the channel, records the last, rings
 * the doorbell, and answers the last (the pending list may be trimmed up to it).
 */
export const moveWebhooks: LuaScript = {
  keys: 'counted',
  lua: `${parseLua}
local last = tonumber(redis.call('GET', KEYS[1]) or '0')
local n = tonumber(ARGV[2])
local streams, rung, queues = {}, {}, {}
for k = 1, n do streams[ARGV[2 + k]] = KEYS[1 + k] end
for i = 3 + n, #ARGV do
  local f = split(ARGV[i])
  local s = tonumber(f[1])
  if s > last then
    local m = tonumber(f[2])
    for j = 1, m do
      local q = f[2 + j]
      redis.call('XADD', streams[q], '*', 'd', f[3 + m])
      if not rung[q] then rung[q] = true; table.insert(queues, q) end
    end
    last = s
  end
end
last = string.format('%.0f', last)
redis.call('SET', KEYS[1], last, 'PX', ${SEQ_TTL_MS})
if #queues > 0 then redis.call('PUBLISH', ARGV[1], table.concat(queues, '\\n')) end
return last`,
};

// Node shares and the apps' channel indexes (state slot). The index (RedisKeys.appChannels) counts, per
// channel, the nodes whose share has sockets there: the channels GET /channels reads the counts of.
const shareLib = `${clusterDerivedKeysLua}
local function indexed(P, app, channel, d)
  local idx = appChannelsKey(P, app)
  if redis.call('HINCRBY', idx, channel, d) <= 0 then redis.call('HDEL', idx, channel) end
end
local function setSubs(P, subs, field, n)
  local app, channel = string.match(field, '^(.-)\\n(.*)$')
  local had = tonumber(redis.call('HGET', subs, field) or '0')
  if n > 0 then redis.call('HSET', subs, field, n) else redis.call('HDEL', subs, field) end
  if had <= 0 and n > 0 then indexed(P, app, channel, 1) elseif had > 0 and n <= 0 then indexed(P, app, channel, -1) end
end
`;

/**
 * KEYS: N.subs N.pres. ARGV: prefix app channel d op member → this node's sockets in the channel
 * changed by d (never below 0), its presence socket "<app>\\n<channel>\\n<socket>\\n<user>" added (op +),
 * removed (op -) or neither.
 */
export const shareChange: LuaScript = {
  keys: 2,
  lua: `${shareLib}
local field = ARGV[2] .. '\\n' .. ARGV[3]
local d = tonumber(ARGV[4])
if d ~= 0 then
  local n = tonumber(redis.call('HGET', KEYS[1], field) or '0') + d
  setSubs(ARGV[1], KEYS[1], field, n < 0 and 0 or n)
end
if ARGV[5] == '+' then redis.call('SADD', KEYS[2], ARGV[6]) elseif ARGV[5] == '-' then redis.call('SREM', KEYS[2], ARGV[6]) end
return 1`,
};

/**
 * KEYS: N.subs N.pres. ARGV: prefix replace share (redis-lua.ts's shape) → writes a node's share: with
 * replace 1 exactly that; with 0 what it held and that (each channel's larger count), so it names every
 * channel either does while the channels are set one by one.
 */
export const shareWrite: LuaScript = {
  keys: 2,
  lua: `${shareLib}
local P, replace = ARGV[1], ARGV[2] == '1'
local want, pres, i = {}, {}, 4
for _ = 1, tonumber(ARGV[3]) do
  want[ARGV[i] .. '\\n' .. ARGV[i + 1]] = tonumber(ARGV[i + 2])
  i = i + 3
end
for _ = 1, tonumber(ARGV[i]) do
  table.insert(pres, table.concat({ ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4] }, '\\n'))
  i = i + 5
end
if replace then
  local h = redis.call('HGETALL', KEYS[1])
  for j = 1, #h, 2 do
    if not want[h[j]] then setSubs(P, KEYS[1], h[j], 0) end
  end
  redis.call('DEL', KEYS[2])
end
for field, n in pairs(want) do
  if not replace then n = math.max(n, tonumber(redis.call('HGET', KEYS[1], field) or '0')) end
  setSubs(P, KEYS[1], field, n)
end
for _, m in ipairs(pres) do redis.call('SADD', KEYS[2], m) end
return 1`,
};

/** KEYS: nodes N.subs N.pres. ARGV: node now → the channels ("<app>\\n<channel>") of a node's share, none if its lease is valid */
export const shareChannels: LuaScript = {
  keys: 3,
  lua: `${leaseLua}${parseLua}
if leaseValid(KEYS[1], ARGV[1], ARGV[2]) then return {} end
local out, seen = {}, {}
local function add(f) if not seen[f] then seen[f] = true; table.insert(out, f) end end
for _, f in ipairs(redis.call('HKEYS', KEYS[2])) do add(f) end
for _, m in ipairs(redis.call('SMEMBERS', KEYS[3])) do
  local f = split(m)
  add(f[1] .. '\\n' .. f[2])
end
return out`,
};

/** KEYS: nodes N.subs N.pres. ARGV: prefix node now → removes a node's share and its index entries, unless its lease is valid */
export const shareDrop: LuaScript = {
  keys: 3,
  lua: `${leaseLua}${shareLib}
if leaseValid(KEYS[1], ARGV[2], ARGV[3]) then return 0 end
for _, f in ipairs(redis.call('HKEYS', KEYS[2])) do setSubs(ARGV[1], KEYS[2], f, 0) end
redis.call('DEL', KEYS[2], KEYS[3])
return 1`,
};
