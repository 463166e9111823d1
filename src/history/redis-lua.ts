// Lua of the Redis channel history. Keys (B = <prefix>:h:<app>:<channel>):
//   B:e  string  the channel's epoch
//   B:n  string  the serial of its last recorded event
//   B:s  stream  the kept events: fields n (serial), f (frame), x (excluded socket id), ids by Redis time
// Every record is one script: number, keep, trim and publish at once, so the order in which nodes
// receive recorded events is the order of their serials.

const lib = `
local function epochOf(B, candidate, keepMs)
  local e = redis.call('GET', B .. ':e')
  if not e then
    e = candidate
    redis.call('SET', B .. ':e', e)
    redis.call('DEL', B .. ':n', B .. ':s')
  end
  redis.call('PEXPIRE', B .. ':e', keepMs)
  return e
end
local function nowMs()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
`;

/**
 * ARGV: B epochCandidate size ttlMs keepMs frame except redisChannel messageHead → "epoch:serial", or
 * "" for a message this script already recorded (the outbox wrote it again after a lost reply).
 * Publishes messageHead .. "r" .. epoch:serial .. "\\n" .. frame on redisChannel (see backbone/redis.ts).
 * B:d holds, per sending process, the last message sequence recorded (messageHead = "<seq> <process>\\n...").
 */
export const recordEvent = `${lib}
local B = ARGV[1]
local seq, sender = string.match(ARGV[9], '^(%d+) ([^\\n]+)\\n')
if seq then
  local done = tonumber(redis.call('HGET', B .. ':d', sender) or '0')
  if tonumber(seq) <= done then return '' end
  redis.call('HSET', B .. ':d', sender, seq)
  redis.call('PEXPIRE', B .. ':d', ARGV[5])
end
local e = epochOf(B, ARGV[2], tonumber(ARGV[5]))
local n = redis.call('INCR', B .. ':n')
redis.call('PEXPIRE', B .. ':n', ARGV[5])
local now = nowMs()
redis.call('XADD', B .. ':s', 'MAXLEN', ARGV[3], '*', 'n', n, 'f', ARGV[6], 'x', ARGV[7])
redis.call('XTRIM', B .. ':s', 'MINID', now - tonumber(ARGV[4]))
redis.call('PEXPIRE', B .. ':s', ARGV[4])
local pos = e .. ':' .. n
redis.call('PUBLISH', ARGV[8], ARGV[9] .. 'r' .. pos .. '\\n' .. ARGV[6])
return pos`;

/**
 * ARGV: B epochCandidate afterSerial limit ttlMs keepMs →
 * { epoch, last, first, serial1, frame1, except1, ms1, ... } (events after afterSerial, oldest first).
 */
export const readHistory = `${lib}
local B = ARGV[1]
local e = epochOf(B, ARGV[2], tonumber(ARGV[6]))
local last = tonumber(redis.call('GET', B .. ':n') or '0')
redis.call('XTRIM', B .. ':s', 'MINID', nowMs() - tonumber(ARGV[5]))
local head = redis.call('XRANGE', B .. ':s', '-', '+', 'COUNT', 1)
local first = last + 1
if #head > 0 then first = tonumber(head[1][2][2]) end
local after = math.max(tonumber(ARGV[3]), first - 1)
local want = math.min(tonumber(ARGV[4]), last - after)
local out = { e, last, first }
if want <= 0 then return out end
-- Serials are consecutive in the stream, so the events after 'after' are its newest (last - after).
local rows = redis.call('XREVRANGE', B .. ':s', '+', '-', 'COUNT', last - after)
local taken = 0
for i = #rows, 1, -1 do
  if taken >= want then break end
  local f = rows[i][2]
  local id = rows[i][1]
  table.insert(out, f[2]); table.insert(out, f[4]); table.insert(out, f[6]); table.insert(out, string.match(id, '^(%d+)'))
  taken = taken + 1
end
return out`;
