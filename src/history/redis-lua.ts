// Lua of the Redis channel history. Every script is given one channel's keys (RedisKeys.history):
//   KEYS[1] epoch    string  the channel's epoch
//   KEYS[2] serial   string  the serial of its last recorded event
//   KEYS[3] events   stream  the kept events: fields n (serial), f (frame), x (excluded socket id), ids by Redis time
//   KEYS[4] senders  hash    sending process → the last message sequence it recorded here (recordEvent only)
// Every record is one script: number, keep, trim and publish at once, so the order in which nodes
// receive recorded events is the order of their serials.
import type { LuaScript } from '../redis/clients.js';

const lib = `
local function epochOf(candidate, keepMs)
  local e = redis.call('GET', KEYS[1])
  if not e then
    e = candidate
    redis.call('SET', KEYS[1], e)
    redis.call('DEL', KEYS[2], KEYS[3])
  end
  redis.call('PEXPIRE', KEYS[1], keepMs)
  return e
end
local function nowMs()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
`;

/**
 * ARGV: epochCandidate size ttlMs keepMs frame except redisChannel messageHead sender seq [publish] →
 * "epoch:serial", or "" for a message this script already recorded (the outbox wrote it again after a
 * lost reply). Publishes messageHead .. "r" .. epoch:serial .. "\\n" .. frame on redisChannel (see
 * backbone/redis.ts), with `publish`: PUBLISH, or SPUBLISH on Redis Cluster (redisChannel then shares
 * the keys' hash slot, redis/keys.ts, so the script stays on one shard). The duplicate rule is the backbone's: a sender's sequence numbers rise within
 * each channel, and these keys are one channel's, so a message not above the last one recorded here
 * from its sender was recorded already.
 */
export const recordEvent: LuaScript = {
  keys: 4,
  lua: `${lib}
local done = tonumber(redis.call('HGET', KEYS[4], ARGV[9]) or '0')
if tonumber(ARGV[10]) <= done then return '' end
redis.call('HSET', KEYS[4], ARGV[9], ARGV[10])
redis.call('PEXPIRE', KEYS[4], ARGV[4])
local e = epochOf(ARGV[1], tonumber(ARGV[4]))
local n = redis.call('INCR', KEYS[2])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
local now = nowMs()
redis.call('XADD', KEYS[3], 'MAXLEN', ARGV[2], '*', 'n', n, 'f', ARGV[5], 'x', ARGV[6])
redis.call('XTRIM', KEYS[3], 'MINID', now - tonumber(ARGV[3]))
redis.call('PEXPIRE', KEYS[3], ARGV[3])
local pos = e .. ':' .. n
redis.call(ARGV[11] or 'PUBLISH', ARGV[7], ARGV[8] .. 'r' .. pos .. '\\n' .. ARGV[5])
return pos`,
};

/**
 * KEYS: epoch serial events. ARGV: epochCandidate afterSerial limit ttlMs keepMs →
 * { epoch, last, first, serial1, frame1, except1, ms1, ... } (events after afterSerial, oldest first).
 */
export const readHistory: LuaScript = {
  keys: 3,
  lua: `${lib}
local e = epochOf(ARGV[1], tonumber(ARGV[5]))
local last = tonumber(redis.call('GET', KEYS[2]) or '0')
redis.call('XTRIM', KEYS[3], 'MINID', nowMs() - tonumber(ARGV[4]))
local head = redis.call('XRANGE', KEYS[3], '-', '+', 'COUNT', 1)
local first = last + 1
if #head > 0 then first = tonumber(head[1][2][2]) end
local after = math.max(tonumber(ARGV[2]), first - 1)
local want = math.min(tonumber(ARGV[3]), last - after)
local out = { e, last, first }
if want <= 0 then return out end
-- Serials are consecutive in the stream, so the events after 'after' are its newest (last - after).
local rows = redis.call('XREVRANGE', KEYS[3], '+', '-', 'COUNT', last - after)
local taken = 0
for i = #rows, 1, -1 do
  if taken >= want then break end
  local f = rows[i][2]
  local id = rows[i][1]
  table.insert(out, f[2]); table.insert(out, f[4]); table.insert(out, f[6]); table.insert(out, string.match(id, '^(%d+)'))
  taken = taken + 1
end
return out`,
};
