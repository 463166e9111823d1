// Lua scripts of the Redis presence store. Each runs atomically, so two nodes racing can never both
// see "first socket of this user" or "last subscriber of this channel".
//
// Keys (P = prefix):
//   P:nodes                        zset   node id → lease expiry (ms)
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
local function leave(node, app, channel, socket, user)
  local b = pbase(app, channel)
  redis.call('SREM', P .. ':n:' .. node .. ':pres', app .. '\\n' .. channel .. '\\n' .. socket .. '\\n' .. user)
  if redis.call('HDEL', b .. ':s', node .. '|' .. socket) == 0 then return 0 end
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
-- One socket of this node fewer; the count after (unchanged if this node had none there).
local function unsub(node, app, channel)
  local nk = P .. ':n:' .. node .. ':subs'
  local field = app .. '\\n' .. channel
  local mine = tonumber(redis.call('HGET', nk, field) or '0')
  if mine <= 0 then return tonumber(redis.call('HGET', P .. ':subs:' .. app, channel) or '0') end
  if mine == 1 then redis.call('HDEL', nk, field) else redis.call('HINCRBY', nk, field, -1) end
  local t = redis.call('HINCRBY', P .. ':subs:' .. app, channel, -1)
  if t <= 0 then redis.call('HDEL', P .. ':subs:' .. app, channel); return 0 end
  return t
end
-- Removes a node's whole share; returns the due events ("m\\n<app>\\n<channel>\\n<user>" for
-- member_removed, "v\\n<app>\\n<channel>" for channel_vacated), member_removed first.
local function drop(node)
  local removed, vacated = {}, {}
  for _, m in ipairs(redis.call('SMEMBERS', P .. ':n:' .. node .. ':pres')) do
    local f = split(m)
    if leave(node, f[1], f[2], f[3], f[4]) == 1 then table.insert(removed, 'm\\n' .. f[1] .. '\\n' .. f[2] .. '\\n' .. f[4]) end
  end
  local nk = P .. ':n:' .. node .. ':subs'
  local h = redis.call('HGETALL', nk)
  for i = 1, #h, 2 do
    local f = split(h[i])
    local tk = P .. ':subs:' .. f[1]
    if redis.call('HINCRBY', tk, f[2], -tonumber(h[i + 1])) <= 0 then
      redis.call('HDEL', tk, f[2])
      table.insert(vacated, 'v\\n' .. f[1] .. '\\n' .. f[2])
    end
  end
  redis.call('DEL', nk, P .. ':n:' .. node .. ':pres')
  for _, v in ipairs(vacated) do table.insert(removed, v) end
  return removed
end
`;

/** ARGV: P node app channel → cluster-wide count after adding one socket */
export const addSubscription = `${lib}
return sub(ARGV[2], ARGV[3], ARGV[4], 1)`;

/** ARGV: P node app channel → count after removing one socket of this node (unchanged if it had none) */
export const removeSubscription = `${lib}
return unsub(ARGV[2], ARGV[3], ARGV[4])`;

/** ARGV: P node app channel socket user info → { count after, added (0|1), flat hash of members } */
export const subscribePresence = `${lib}
local count = sub(ARGV[2], ARGV[3], ARGV[4], 1)
local added = join(ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7])
return { count, added, redis.call('HGETALL', pbase(ARGV[3], ARGV[4]) .. ':i') }`;

/** ARGV: P node app channel socket user → { last (0|1), count after } */
export const unsubscribePresence = `${lib}
local last = leave(ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6])
return { last, unsub(ARGV[2], ARGV[3], ARGV[4]) }`;

/** ARGV: P node app channel socket user info → { added (0|1), flat hash of members } */
export const joinPresence = `${lib}
local added = join(ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7])
return { added, redis.call('HGETALL', pbase(ARGV[3], ARGV[4]) .. ':i') }`;

/** ARGV: P node app channel socket user → 1 when that was the user's last socket */
export const leavePresence = `${lib}
return leave(ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6])`;

/** ARGV: P node now → the due events, or nothing when the node's lease is still valid (another survivor won) */
export const dropExpiredNode = `${lib}
local s = redis.call('ZSCORE', P .. ':nodes', ARGV[2])
if not s or tonumber(s) > tonumber(ARGV[3]) then return {} end
local out = drop(ARGV[2])
redis.call('ZREM', P .. ':nodes', ARGV[2])
return out`;

/** ARGV: P node → the due events; this node leaves the cluster (graceful stop). */
export const dropSelf = `${lib}
local out = drop(ARGV[2])
redis.call('ZREM', P .. ':nodes', ARGV[2])
return out`;

/**
 * Replaces this node's share with its own record of it (after a reconnect, or a Redis restart that
 * lost everything). ARGV: P node leaseExpiry nSubs (app channel count)*nSubs (app channel socket user info)*
 */
export const replayShare = `${lib}
local node = ARGV[2]
drop(node)
redis.call('ZADD', P .. ':nodes', ARGV[3], node)
local n = tonumber(ARGV[4])
local i = 5
for _ = 1, n do
  sub(node, ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2]))
  i = i + 3
end
while i <= #ARGV do
  join(node, ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4])
  i = i + 5
end
return 1`;
