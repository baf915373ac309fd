-- GCRA over both windows (per second, per minute) of several buckets, all or
-- nothing (see package ratelimit's doc).
--
-- KEYS[i]   one bucket: "<TAT per second>:<TAT per minute>", µs since the
--           epoch as integers; missing (or unreadable) means idle
-- ARGV[1]   n, requests to admit at once (integer >= 1)
-- ARGV[2]   now in µs since the epoch, or 0 to read Redis TIME (only tests
--           pass a clock)
-- ARGV[3]   ms added to every TTL, so no key expires before its TATs (Redis
--           expires on a ms clock that may lag TIME)
-- ARGV[4,5] emission interval T and tolerance tau = (burst-1)*T of the
--           per-second window, in µs
-- ARGV[6,7] the same for the per-minute window
--
-- This is the limiter's hot path: one key per bucket and the two windows
-- spelt out, because each command a script runs costs about as much as all
-- of its arithmetic (an admitted call costs about 1.5 raw GETs; see
-- BenchmarkAllow).
--
-- Returns {allowed, remaining, retry_after_us, reset_after_us, now_us}:
--   allowed         1 if every window of every bucket admits n now, and then
--                   all are charged; else 0 and no key is touched
--   remaining       single requests every window would still admit at now
--   retry_after_us  0 if allowed, else how long until every window admits n
--   reset_after_us  how long until every window is idle again
--   now_us          the clock reading the decision used
--
-- Numbers are doubles; µs since the epoch (~2^51) are exact below 2^53.

-- Redis < 5 must be told to replicate effects, as TIME is not deterministic.
if redis.replicate_commands then
  redis.replicate_commands()
end

if #ARGV ~= 7 then
  return redis.error_reply('ERR gcra: want 7 arguments')
end

local n = tonumber(ARGV[1])
local now = tonumber(ARGV[2])
local slack = tonumber(ARGV[3])
if now == 0 then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local T1, tau1 = tonumber(ARGV[4]), tonumber(ARGV[5])
local T2, tau2 = tonumber(ARGV[6]), tonumber(ARGV[7])

-- The usual call names one bucket: the same steps as the general case
-- below, without its tables (about a tenth of the script's time).
if #KEYS == 1 then
  local a, b
  local stored = redis.call('GET', KEYS[1])
  if stored then
    local sep = string.find(stored, ':', 1, true)
    if sep then
      a = tonumber(string.sub(stored, 1, sep - 1))
      b = tonumber(string.sub(stored, sep + 1))
    end
  end
  if not a or a < now then
    a = now
  end
  if not b or b < now then
    b = now
  end
  local retry = math.max(a + (n - 1) * T1 - tau1 - now, b + (n - 1) * T2 - tau2 - now, 0)
  local allowed = 0
  if retry == 0 then
    allowed = 1
    a = a + n * T1
    b = b + n * T2
  end
  local remaining = math.max(math.min(math.floor((now + tau1 + T1 - a) / T1), math.floor((now + tau2 + T2 - b) / T2)), 0)
  local idle = math.max(a, b) - now
  if allowed == 1 then
    redis.call('SET', KEYS[1], string.format('%.0f:%.0f', a, b), 'PX', math.ceil(idle / 1000) + slack)
  end
  return {allowed, remaining, retry, idle, now}
end

-- Pass 1: read every TAT and find how long until all of them admit n.
local tat1, tat2 = {}, {}
local retry = 0
for i = 1, #KEYS do
  local a, b
  local stored = redis.call('GET', KEYS[i])
  if stored then
    local sep = string.find(stored, ':', 1, true)
    if sep then
      a = tonumber(string.sub(stored, 1, sep - 1))
      b = tonumber(string.sub(stored, sep + 1))
    end
  end
  if not a or a < now then
    a = now
  end
  if not b or b < now then
    b = now
  end
  tat1[i], tat2[i] = a, b
  -- The n-th request conforms iff tat + (n-1)T <= now + tau.
  local wait = a + (n - 1) * T1 - tau1 - now
  if wait > retry then
    retry = wait
  end
  wait = b + (n - 1) * T2 - tau2 - now
  if wait > retry then
    retry = wait
  end
end

-- Pass 2: charge every bucket or none, and report.
local allowed = 0
if retry == 0 then
  allowed = 1
end
local remaining = -1
local reset = 0
for i = 1, #KEYS do
  local a, b = tat1[i], tat2[i]
  if allowed == 1 then
    a = a + n * T1
    b = b + n * T2
  end
  local r = math.min(math.floor((now + tau1 + T1 - a) / T1), math.floor((now + tau2 + T2 - b) / T2))
  if i == 1 or r < remaining then -- the minimum over every bucket
    remaining = r
  end
  local idle = math.max(a, b) - now -- until both windows are idle again
  if idle > reset then
    reset = idle
  end
  if allowed == 1 then
    -- Expire once both windows are idle again: a key that vanished early
    -- would admit early. Expiring late costs nothing (an old TAT reads as
    -- idle). '%.0f' because Lua 5.1's tostring keeps only 14 digits.
    redis.call('SET', KEYS[i], string.format('%.0f:%.0f', a, b), 'PX', math.ceil(idle / 1000) + slack)
  end
end
if remaining < 0 then
  remaining = 0
end

return {allowed, remaining, retry, reset, now}
