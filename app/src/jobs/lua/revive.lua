-- Gives a dead job a fresh set of attempts: out of the dead set, to the tail of the ready list.
-- KEYS[1] dead zset, KEYS[2] ready list, KEYS[3] job hash
-- ARGV[1] id
-- Returns 1 when revived, 0 when the job is not dead.
if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then
  return 0
end
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
redis.call('HSET', KEYS[3], 'state', 'queued', 'attempts', 0, 'updatedAt', now)
redis.call('HDEL', KEYS[3], 'finishedAt')
redis.call('PERSIST', KEYS[3])
redis.call('RPUSH', KEYS[2], ARGV[1])
return 1
