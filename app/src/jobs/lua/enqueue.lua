-- Adds a job: its hash, then its id at the tail of the ready list. A job id that exists is left alone.
-- KEYS[1] job hash, KEYS[2] ready list
-- ARGV[1] id, ARGV[2] queue, ARGV[3] payload (JSON), ARGV[4] max attempts, ARGV[5] the W3C traceparent of
-- the request that enqueued it ('' when traces are off), so the worker's span continues that trace,
-- ARGV[6] attempts already spent (0, or the PostgreSQL ledger's count when Redis lost the job)
-- Returns 1 when added, 0 when the id existed.
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
redis.call('HSET', KEYS[1], 'id', ARGV[1], 'queue', ARGV[2], 'payload', ARGV[3],
  'state', 'queued', 'attempts', ARGV[6], 'maxAttempts', ARGV[4], 'createdAt', now, 'updatedAt', now)
if ARGV[5] ~= '' then
  redis.call('HSET', KEYS[1], 'traceparent', ARGV[5])
end
redis.call('RPUSH', KEYS[2], ARGV[1])
return 1
