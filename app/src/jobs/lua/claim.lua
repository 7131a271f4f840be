-- Takes the next ready job and leases it to the caller, atomically: a job is always in exactly one of
-- ready / scheduled / running / dead (or finished), so a crash between two steps cannot lose it.
-- KEYS[1] ready list, KEYS[2] scheduled zset, KEYS[3] running zset
-- ARGV[1] job hash key prefix, ARGV[2] lease in ms
-- Returns {id, payload, attempt, maxAttempts, traceparent ('' if none)} or nil when nothing is ready.
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
-- Retries whose delay has passed become ready.
local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, 100)
for _, id in ipairs(due) do
  redis.call('ZREM', KEYS[2], id)
  redis.call('RPUSH', KEYS[1], id)
  redis.call('HSET', ARGV[1] .. id, 'state', 'queued', 'updatedAt', now)
end
while true do
  local id = redis.call('LPOP', KEYS[1])
  if not id then
    return nil
  end
  local key = ARGV[1] .. id
  -- A hash that expired or was removed leaves a stale id behind: skip it.
  if redis.call('EXISTS', key) == 1 then
    local attempt = redis.call('HINCRBY', key, 'attempts', 1)
    redis.call('HSET', key, 'state', 'running', 'startedAt', now, 'updatedAt', now)
    redis.call('HDEL', key, 'runAt')
    redis.call('ZADD', KEYS[3], now + tonumber(ARGV[2]), id)
    local fields = redis.call('HMGET', key, 'payload', 'maxAttempts', 'traceparent')
    return {id, fields[1], attempt, fields[2], fields[3] or ''}
  end
end
