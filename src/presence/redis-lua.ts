// Lua scripts of the Redis presence store. Each runs atomically, so two nodes racing can never both
// see "first socket of this user" or "last subscriber of this channel", and each writes the webhooks
// of the transitions it makes (channel_occupied, member_added, member_removed, channel_vacated) into
// the endpoints' queues in the same step: the queues hold them in the order the transitions happened,
// whichever nodes made them (README "Webhooks"). The node names the queues that want each transition
// of a channel (a "route", from the endpoints' event types and filters) in the arguments.
//
// Keys (P = prefix):
//   P:nodes                        zset   node id → lease expiry (ms), kept by cluster/node-lease
//   P:n:<node>:subs                hash   "<app>\n<channel>" → this node's sockets in the channel
//   P:n:<node>:pres                set    "<app>\n<channel>\n<socket>\n<user>" this node's presence sockets
//   P:subs:<app>                   hash   channel → sockets cluster-wide
//   P:p:<app>:<channel>:s          hash   "<node>|<socket>" → user id
//   P:p:<app>:<channel>:u          hash   user id → sockets of the user in the channel
//   P:p:<app>:<channel>:i          hash   user id → user_info JSON (the user's first socket's)
//   <stream prefix><queue>         stream webhook events {t, ev} in field d (webhooks/redis-queue.ts)
//
// Every script takes ARGV 1-4: P, the webhook stream key prefix, the webhook doorbell channel, now (ms).
// A route is four lists (occupied, vacated, added, removed), each its length and then queue names.
// A share (what one node holds) is nSubs, (app channel sockets)*nSubs, nPres, (app channel socket user info)*nPres.
import { leaseLua } from '../cluster/node-lease.js';

const lib = `
local P = ARGV[1]
local W = { prefix = ARGV[2], bell = ARGV[3], now = tonumber(ARGV[4]), rung = {}, queues = {} }
local function split(s)
  local t, i = {}, 1
  while true do
    local j = string.find(s, '\\n', i, true)
    if not j then table.insert(t, string.sub(s, i)); return t end
    table.insert(t, string.sub(s, i, j - 1)); i = j + 1
  end
end
local function pbase(app, channel) return P .. ':p:' .. app .. ':' .. channel end

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
-- Webhooks: appended to each wanting queue now; one doorbell at the end names every queue written.
local function hook(queues, ev)
  if not queues or #queues == 0 then return end
  local d = cjson.encode({ t = W.now, ev = ev })
  for _, q in ipairs(queues) do
    redis.call('XADD', W.prefix .. q, '*', 'd', d)
    if not W.rung[q] then W.rung[q] = true; table.insert(W.queues, q) end
  end
end
local function ring()
  if #W.queues > 0 then redis.call('PUBLISH', W.bell, table.concat(W.queues, '\\n')) end
end
local function occupied(route, channel) hook(route and route.occupied, { name = 'channel_occupied', channel = channel }) end
local function vacated(route, channel) hook(route and route.vacated, { name = 'channel_vacated', channel = channel }) end
local function memberAdded(route, channel, user) hook(route and route.added, { name = 'member_added', channel = channel, user_id = user }) end
local function memberRemoved(route, channel, user) hook(route and route.removed, { name = 'member_removed', channel = channel, user_id = user }) end

local function join(node, app, channel, socket, user, info)
  local b = pbase(app, channel)
  redis.call('SADD', P .. ':n:' .. node .. ':pres', app .. '\\n' .. channel .. '\\n' .. socket .. '\\n' .. user)
  if redis.call('HSETNX', b .. ':s', node .. '|' .. socket, user) == 0 then return 0 end
  if redis.call('HINCRBY', b .. ':u', user, 1) == 1 then
    redis.call('HSET', b .. ':i', user, info)
    return 1
  end
  return 0
end
-- -1: the socket was not there; 1: it was the user's last socket; 0: otherwise.
local function leave(node, app, channel, socket, user)
  local b = pbase(app, channel)
  redis.call('SREM', P .. ':n:' .. node .. ':pres', app .. '\\n' .. channel .. '\\n' .. socket .. '\\n' .. user)
  if redis.call('HDEL', b .. ':s', node .. '|' .. socket) == 0 then return -1 end
  if redis.call('HINCRBY', b .. ':u', user, -1) <= 0 then
    redis.call('HDEL', b .. ':u', user)
    redis.call('HDEL', b .. ':i', user)
    return 1
  end
  return 0
end
local function sub(node, app, channel, n)
  redis.call('HINCRBY', P .. ':n:' .. node .. ':subs', app .. '\\n' .. channel, n)
  return redis.call('HINCRBY', P .. ':subs:' .. app, channel, n)
end
local function total(app, channel) return tonumber(redis.call('HGET', P .. ':subs:' .. app, channel) or '0') end
-- One socket of this node fewer: the count after, and whether it changed (not if this node had none there).
local function unsub(node, app, channel)
  local nk = P .. ':n:' .. node .. ':subs'
  local field = app .. '\\n' .. channel
  local mine = tonumber(redis.call('HGET', nk, field) or '0')
  if mine <= 0 then return total(app, channel), false end
  if mine == 1 then redis.call('HDEL', nk, field) else redis.call('HINCRBY', nk, field, -1) end
  local t = redis.call('HINCRBY', P .. ':subs:' .. app, channel, -1)
  if t <= 0 then redis.call('HDEL', P .. ':subs:' .. app, channel); return 0, true end
  return t, true
end
`;

// Whole shares: only the scripts that remove or replace one carry these.
const shareLib = `
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
local function drop(node)
  for _, m in ipairs(redis.call('SMEMBERS', P .. ':n:' .. node .. ':pres')) do
    local f = split(m)
    leave(node, f[1], f[2], f[3], f[4])
  end
  local nk = P .. ':n:' .. node .. ':subs'
  local h = redis.call('HGETALL', nk)
  for i = 1, #h, 2 do
    local f = split(h[i])
    local tk = P .. ':subs:' .. f[1]
    if redis.call('HINCRBY', tk, f[2], -tonumber(h[i + 1])) <= 0 then redis.call('HDEL', tk, f[2]) end
  end
  redis.call('DEL', nk, P .. ':n:' .. node .. ':pres')
end
local function write(node, subs, pres)
  for _, s in ipairs(subs) do sub(node, s[1], s[2], s[3]) end
  for _, p in ipairs(pres) do join(node, p[1], p[2], p[3], p[4], p[5]) end
end

-- Replaces a node's share with subs and pres (both empty: removes it) and returns what that changed,
-- channel by channel: each member_added ("a\\n<app>\\n<channel>\\n<user>\\n<info>"), each member_removed
-- ("m\\n<app>\\n<channel>\\n<user>"), then the channel's count if it changed ("c\\n<app>\\n<channel>\\n<n>").
-- Every channel and user the share had or has is compared before and after, against everything the
-- other nodes hold, so a user with a socket left elsewhere is not removed, and a channel others still
-- occupy is not vacated. The webhooks follow in the same order, channel_occupied first and
-- channel_vacated last.
local function reshare(node, subs, pres, routes)
  local chans, list = {}, {}
  local function chan(app, channel)
    local key = app .. '\\n' .. channel
    local c = chans[key]
    if not c then
      c = { app = app, channel = channel, key = key, before = total(app, channel), had = {}, users = {} }
      chans[key] = c
      table.insert(list, c)
    end
    return c
  end
  local function user(c, u)
    if c.had[u] == nil then
      c.had[u] = redis.call('HEXISTS', pbase(c.app, c.channel) .. ':u', u) == 1
      table.insert(c.users, u)
    end
  end
  for _, m in ipairs(redis.call('SMEMBERS', P .. ':n:' .. node .. ':pres')) do
    local f = split(m)
    user(chan(f[1], f[2]), f[4])
  end
  local h = redis.call('HGETALL', P .. ':n:' .. node .. ':subs')
  for i = 1, #h, 2 do
    local f = split(h[i])
    chan(f[1], f[2])
  end
  for _, s in ipairs(subs) do chan(s[1], s[2]) end
  for _, p in ipairs(pres) do user(chan(p[1], p[2]), p[4]) end
  drop(node)
  write(node, subs, pres)
  local out = {}
  for _, c in ipairs(list) do
    local route = routes[c.key]
    local after = total(c.app, c.channel)
    local b = pbase(c.app, c.channel)
    if c.before == 0 and after > 0 then occupied(route, c.channel) end
    for _, u in ipairs(c.users) do
      if not c.had[u] and redis.call('HEXISTS', b .. ':u', u) == 1 then
        memberAdded(route, c.channel, u)
        table.insert(out, 'a\\n' .. c.key .. '\\n' .. u .. '\\n' .. redis.call('HGET', b .. ':i', u))
      end
    end
    for _, u in ipairs(c.users) do
      if c.had[u] and redis.call('HEXISTS', b .. ':u', u) == 0 then
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

/** ARGV: head node app channel route → cluster-wide count after adding one socket */
export const addSubscription = `${lib}
local route = readRoute(8)
local count = sub(ARGV[5], ARGV[6], ARGV[7], 1)
if count == 1 then occupied(route, ARGV[7]) end
ring()
return count`;

/** ARGV: head node app channel route → count after removing one socket of this node (unchanged if it had none) */
export const removeSubscription = `${lib}
local route = readRoute(8)
local count, changed = unsub(ARGV[5], ARGV[6], ARGV[7])
if changed and count == 0 then vacated(route, ARGV[7]) end
ring()
return count`;

/**
 * ARGV: head node app channel socket user info maxMembers route → { -1 } when a new member would
 * exceed maxMembers (nothing recorded), else { count after, added (0|1), flat hash of members }
 */
export const subscribePresence = `${lib}
local b = pbase(ARGV[6], ARGV[7])
if redis.call('HEXISTS', b .. ':u', ARGV[9]) == 0 and redis.call('HLEN', b .. ':u') >= tonumber(ARGV[11]) then return { -1 } end
local route = readRoute(12)
local count = sub(ARGV[5], ARGV[6], ARGV[7], 1)
local added = join(ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9], ARGV[10])
if count == 1 then occupied(route, ARGV[7]) end
if added == 1 then memberAdded(route, ARGV[7], ARGV[9]) end
ring()
return { count, added, redis.call('HGETALL', b .. ':i') }`;

/** ARGV: head node app channel socket user route → { last (1|0, -1: socket not held, nothing changed), count after } */
export const unsubscribePresence = `${lib}
local last = leave(ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9])
if last < 0 then return { -1, total(ARGV[6], ARGV[7]) } end
local route = readRoute(10)
local count, changed = unsub(ARGV[5], ARGV[6], ARGV[7])
if last == 1 then memberRemoved(route, ARGV[7], ARGV[9]) end
if changed and count == 0 then vacated(route, ARGV[7]) end
ring()
return { last, count }`;

/** The uncounted online set (no webhooks). ARGV: head node app channel socket user info → { added (0|1), flat hash of members } */
export const joinPresence = `${lib}
local added = join(ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9], ARGV[10])
return { added, redis.call('HGETALL', pbase(ARGV[6], ARGV[7]) .. ':i') }`;

/** ARGV: head node app channel socket user → 1 when that was the user's last socket */
export const leavePresence = `${lib}
return leave(ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9])`;

/**
 * ARGV: head node routes → the due events of removing the node's share (see reshare), or nothing when
 * its lease is still valid (it renewed in time) or another survivor removed it first.
 */
export const dropNode = `${lib}${shareLib}${leaseLua}
if leaseValid(P, ARGV[5], W.now) then return {} end
return reshare(ARGV[5], {}, {}, readRoutes(6))`;

/**
 * Replaces this node's share with its own record of it, reporting every change that makes (after a
 * reconnect: what this node's sockets did while Redis could not be told). ARGV: head node share routes
 */
export const replayShare = `${lib}${shareLib}
local subs, pres, i = readShare(6)
return reshare(ARGV[5], subs, pres, readRoutes(i))`;

/**
 * Writes back this node's share as Redis last held it, silently (after Redis lost its data: the state
 * every node's clients were told is rebuilt before any change is replayed). ARGV: head node share
 */
export const restoreShare = `${lib}${shareLib}
local subs, pres = readShare(6)
drop(ARGV[5])
write(ARGV[5], subs, pres)
return 1`;
