// Lua scripts of the Redis presence store. Each runs atomically, so two nodes racing can never both
// see "first socket of this user" or "last subscriber of this channel".
//
// Keys (P = prefix):
//   P:nodes                        zset   node id → lease expiry (ms), kept by cluster/node-lease
//   P:n:<node>:subs                hash   "<app>\n<channel>" → this node's sockets in the channel
//   P:n:<node>:pres                set    "<app>\n<channel>\n<socket>\n<user>" this node's presence sockets
//   P:subs:<app>                   hash   channel → sockets cluster-wide
//   P:p:<app>:<channel>:s          hash   "<node>|<socket>" → user id
//   P:p:<app>:<channel>:u          hash   user id → sockets of the user in the channel
//   P:p:<app>:<channel>:i          hash   user id → user_info JSON (the user's first socket's)

const lib = `
local P = ARGV[1]
local function split(s)
  local t, i = {}, 1
  while true do
    local j = string.find(s, '\\n', i, true)
    if not j then table.insert(t, string.sub(s, i)); return t end
    table.insert(t, string.sub(s, i, j - 1)); i = j + 1
  end
end
local function pbase(app, channel) return P .. ':p:' .. app .. ':' .. channel end
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
-- One socket of this node fewer; the count after (unchanged if this node had none there).
local function unsub(node, app, channel)
  local nk = P .. ':n:' .. node .. ':subs'
  local field = app .. '\\n' .. channel
  local mine = tonumber(redis.call('HGET', nk, field) or '0')
  if mine <= 0 then return total(app, channel) end
  if mine == 1 then redis.call('HDEL', nk, field) else redis.call('HINCRBY', nk, field, -1) end
  local t = redis.call('HINCRBY', P .. ':subs:' .. app, channel, -1)
  if t <= 0 then redis.call('HDEL', P .. ':subs:' .. app, channel); return 0 end
  return t
end
-- Removes a node's whole share; returns the due events, member_removed first
-- ("m\\n<app>\\n<channel>\\n<user>"), then each channel's count after ("c\\n<app>\\n<channel>\\n<n>").
local function drop(node)
  local out, counts = {}, {}
  for _, m in ipairs(redis.call('SMEMBERS', P .. ':n:' .. node .. ':pres')) do
    local f = split(m)
    if leave(node, f[1], f[2], f[3], f[4]) == 1 then table.insert(out, 'm\\n' .. f[1] .. '\\n' .. f[2] .. '\\n' .. f[4]) end
  end
  local nk = P .. ':n:' .. node .. ':subs'
  local h = redis.call('HGETALL', nk)
  for i = 1, #h, 2 do
    local f = split(h[i])
    local tk = P .. ':subs:' .. f[1]
    local t = redis.call('HINCRBY', tk, f[2], -tonumber(h[i + 1]))
    if t <= 0 then redis.call('HDEL', tk, f[2]); t = 0 end
    table.insert(counts, 'c\\n' .. f[1] .. '\\n' .. f[2] .. '\\n' .. t)
  end
  redis.call('DEL', nk, P .. ':n:' .. node .. ':pres')
  for _, c in ipairs(counts) do table.insert(out, c) end
  return out
end
`;

/** ARGV: P node app channel → cluster-wide count after adding one socket */
export const addSubscription = `${lib}
return sub(ARGV[2], ARGV[3], ARGV[4], 1)`;

/** ARGV: P node app channel → count after removing one socket of this node (unchanged if it had none) */
export const removeSubscription = `${lib}
return unsub(ARGV[2], ARGV[3], ARGV[4])`;

/**
 * ARGV: P node app channel socket user info maxMembers → { -1 } when a new member would exceed
 * maxMembers (nothing recorded), else { count after, added (0|1), flat hash of members }
 */
export const subscribePresence = `${lib}
local b = pbase(ARGV[3], ARGV[4])
if redis.call('HEXISTS', b .. ':u', ARGV[6]) == 0 and redis.call('HLEN', b .. ':u') >= tonumber(ARGV[8]) then return { -1 } end
local count = sub(ARGV[2], ARGV[3], ARGV[4], 1)
local added = join(ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7])
return { count, added, redis.call('HGETALL', b .. ':i') }`;

/** ARGV: P node app channel socket user → { last (1|0, -1: socket not held, nothing changed), count after } */
export const unsubscribePresence = `${lib}
local last = leave(ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6])
if last < 0 then return { -1, total(ARGV[3], ARGV[4]) } end
return { last, unsub(ARGV[2], ARGV[3], ARGV[4]) }`;

/** ARGV: P node app channel socket user info → { added (0|1), flat hash of members } */
export const joinPresence = `${lib}
local added = join(ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7])
return { added, redis.call('HGETALL', pbase(ARGV[3], ARGV[4]) .. ':i') }`;

/** ARGV: P node app channel socket user → 1 when that was the user's last socket */
export const leavePresence = `${lib}
return leave(ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6])`;

/**
 * ARGV: P node now → the due events of removing the node's share, or nothing when its lease is still
 * valid (it renewed in time) or another survivor removed it first.
 */
export const dropNode = `${lib}
local s = redis.call('ZSCORE', P .. ':nodes', ARGV[2])
if s and tonumber(s) > tonumber(ARGV[3]) then return {} end
return drop(ARGV[2])`;

/**
 * Replaces this node's share with its own record of it (after a reconnect, or a Redis restart that
 * lost everything). ARGV: P node nSubs (app channel count)*nSubs (app channel socket user info)*
 */
export const replayShare = `${lib}
local node = ARGV[2]
drop(node)
local n = tonumber(ARGV[3])
local i = 4
for _ = 1, n do
  sub(node, ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2]))
  i = i + 3
end
while i <= #ARGV do
  join(node, ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4])
  i = i + 5
end
return 1`;
