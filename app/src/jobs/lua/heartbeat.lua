-- Extends the lease of a running job, if the caller still holds it (same attempt).
-- KEYS[1] running zset, KEYS[2] job hash
-- ARGV[1] id, ARGV[2] attempt, ARGV[3] lease in ms
-- Returns 1 when extended, 0 when the lease was lost.
if redis.call('HGET', KEYS[2], 'attempts') ~= ARGV[2] or redis.call('HGET', KEYS[2], 'state') ~= 'running' then
  return 0
end
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[3]), ARGV[1])
return 1
