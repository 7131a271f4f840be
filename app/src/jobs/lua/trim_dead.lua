-- Keeps the dead-letter set of a queue bounded: drops jobs that died longer ago than the age limit,
-- then the oldest ones past the count limit, each with its hash (so Redis cannot fill up with jobs
-- nobody looks at: a job's hash is kept for the same age limit by an EXPIRE set when it died).
-- KEYS[1] dead zset (scored by the time the job died)
-- ARGV[1] job hash key prefix, ARGV[2] most dead jobs kept, ARGV[3] age limit in ms
-- Returns how many jobs were dropped.
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local dropped = 0
local function drop(ids)
  for _, id in ipairs(ids) do
    redis.call('ZREM', KEYS[1], id)
    redis.call('DEL', ARGV[1] .. id)
    dropped = dropped + 1
  end
end
drop(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[3]), 'LIMIT', 0, 1000))
local over = redis.call('ZCARD', KEYS[1]) - tonumber(ARGV[2])
if over > 0 then
  drop(redis.call('ZRANGE', KEYS[1], 0, math.min(over, 1000) - 1))
end
return dropped
