-- Recovers jobs whose lease expired (their worker died or hung): back to ready while attempts remain,
-- else dead-lettered. The lost attempt counts, so a job that kills its worker every time ends up dead.
-- KEYS[1] running zset, KEYS[2] ready list, KEYS[3] dead zset
-- ARGV[1] job hash key prefix, ARGV[2] seconds a dead job is kept at most
-- Returns {requeued, dead}.
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, 100)
local requeued, dead = 0, 0
for _, id in ipairs(expired) do
  redis.call('ZREM', KEYS[1], id)
  local key = ARGV[1] .. id
  if redis.call('EXISTS', key) == 1 then
    local f = redis.call('HMGET', key, 'attempts', 'maxAttempts')
    local err = 'attempt ' .. (f[1] or '?') .. ' lost: the worker stopped renewing its lease'
    if tonumber(f[1] or 0) >= tonumber(f[2] or 1) then
      redis.call('HSET', key, 'state', 'dead', 'lastError', err, 'finishedAt', now, 'updatedAt', now)
      redis.call('ZADD', KEYS[3], now, id)
      redis.call('EXPIRE', key, tonumber(ARGV[2]))
      dead = dead + 1
    else
      redis.call('HSET', key, 'state', 'queued', 'lastError', err, 'updatedAt', now)
      redis.call('RPUSH', KEYS[2], id)
      requeued = requeued + 1
    end
  end
end
return {requeued, dead}
