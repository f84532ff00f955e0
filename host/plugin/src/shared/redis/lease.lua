-- Leases tokens of global token buckets, one bucket per key, atomically.
-- KEYS[i]: a bucket (a hash: t = tokens, at = last refill, ms on Redis's clock).
-- ARGV[4i-3 .. 4i]: rate (tokens/s), burst, tokens wanted, charge (tokens to
-- take without granting them: spent before a lease, or, negative, given back).
-- Returns, per key: tokens granted, whole tokens left in the bucket.
-- Redis's own clock (TIME) refills every bucket, so gateways' clocks never matter.
local now = redis.call('TIME')
now = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local out = {}
for i, key in ipairs(KEYS) do
  local base = (i - 1) * 4
  local rate = tonumber(ARGV[base + 1])
  local burst = tonumber(ARGV[base + 2])
  local want = tonumber(ARGV[base + 3])
  local charge = tonumber(ARGV[base + 4])
  local state = redis.call('HMGET', key, 't', 'at')
  local tokens = tonumber(state[1])
  local at = tonumber(state[2])
  if tokens == nil or at == nil then
    tokens = burst
    at = now
  end
  if now > at then
    tokens = math.min(burst, tokens + (now - at) * rate / 1000)
    at = now
  end
  -- Debt may take the bucket below zero (it is paid back by the refill),
  -- but never below -burst.
  tokens = math.max(-burst, math.min(burst, tokens - charge))
  local granted = 0
  if want > 0 and tokens >= 1 then
    granted = math.min(want, math.floor(tokens))
    tokens = tokens - granted
  end
  redis.call('HSET', key, 't', tostring(tokens), 'at', tostring(at))
  -- Once full again, a bucket is the same as no bucket: let Redis forget it.
  -- One that never refills (rate 0, a quota) is kept two days after its last use.
  local ttl = 172800000
  if rate > 0 then
    ttl = math.min(ttl, math.ceil((burst - tokens) / rate * 1000) + 1000)
  end
  redis.call('PEXPIRE', key, ttl)
  out[2 * i - 1] = granted
  out[2 * i] = math.floor(tokens)
end
return out
