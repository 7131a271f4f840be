-- Records the outcome of an attempt, if the caller still holds the lease (same attempt, still running).
-- KEYS[1] running zset, KEYS[2] scheduled zset, KEYS[3] dead zset, KEYS[4] job hash
-- ARGV[1] id, ARGV[2] attempt, ARGV[3] outcome: 'succeeded' | 'retry' | 'dead'
-- ARGV[4] result JSON (succeeded) or error text (retry, dead)
-- ARGV[5] retry delay in ms (retry) or seconds to keep the finished job (succeeded)
-- ARGV[6] seconds a dead job is kept at most (its hash expires then; see trim_dead.lua)
-- Returns 1 when recorded, 0 when the lease was lost (another attempt owns the job now).
if redis.call('HGET', KEYS[4], 'attempts') ~= ARGV[2] or redis.call('HGET', KEYS[4], 'state') ~= 'running' then
  return 0
end
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
redis.call('ZREM', KEYS[1], ARGV[1])
if ARGV[3] == 'succeeded' then
  redis.call('HSET', KEYS[4], 'state', 'succeeded', 'result', ARGV[4], 'finishedAt', now, 'updatedAt', now)
  redis.call('EXPIRE', KEYS[4], tonumber(ARGV[5]))
elseif ARGV[3] == 'retry' then
  local at = now + tonumber(ARGV[5])
  redis.call('HSET', KEYS[4], 'state', 'failed', 'lastError', ARGV[4], 'runAt', at, 'updatedAt', now)
  redis.call('ZADD', KEYS[2], at, ARGV[1])
else
  redis.call('HSET', KEYS[4], 'state', 'dead', 'lastError', ARGV[4], 'finishedAt', now, 'updatedAt', now)
  redis.call('ZADD', KEYS[3], now, ARGV[1])
  redis.call('EXPIRE', KEYS[4], tonumber(ARGV[6]))
end
return 1
