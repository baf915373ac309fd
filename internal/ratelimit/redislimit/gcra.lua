-- GCRA over several windows, all or nothing (see package ratelimit's doc).
--
-- KEYS[i]        TAT of one window of one bucket: µs since the epoch, as an
--                integer string; missing means idle.
-- ARGV[1]        n, requests to admit at once (integer >= 1)
-- ARGV[2]        now in µs since the epoch, or 0 to read Redis TIME (only
--                tests pass a clock)
-- ARGV[3]        ms added to every TTL, so no key expires before its TAT
--                (Redis expires on a ms clock that may lag TIME)
-- ARGV[2+2i]     emission interval T of KEYS[i] in µs (integer >= 1)
-- ARGV[3+2i]     tolerance tau of KEYS[i] in µs, (burst-1)*T
--
-- Returns {allowed, remaining, retry_after_us, reset_after_us, now_us}:
--   allowed         1 if every window admits n now, and then all are charged;
--                   else 0 and no key is touched
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

if #ARGV ~= 3 + 2 * #KEYS then
  return redis.error_reply('ERR gcra: want 3 + 2 * #KEYS arguments')
end

local n = tonumber(ARGV[1])
local now = tonumber(ARGV[2])
local slack = tonumber(ARGV[3])
if now == 0 then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end

-- Pass 1: read every TAT and find how long until all of them admit n.
local tats = {}
local retry = 0
for i = 1, #KEYS do
  local T = tonumber(ARGV[2 + 2 * i])
  local tau = tonumber(ARGV[3 + 2 * i])
  local tat = tonumber(redis.call('GET', KEYS[i])) or now
  if tat < now then
    tat = now
  end
  tats[i] = tat
  -- The n-th request conforms iff tat + (n-1)T <= now + tau.
  local wait = tat + (n - 1) * T - tau - now
  if wait > retry then
    retry = wait
  end
end

-- Pass 2: charge all windows or none, and report.
local allowed = 0
if retry == 0 then
  allowed = 1
end
local remaining = -1
local reset = 0
for i = 1, #KEYS do
  local T = tonumber(ARGV[2 + 2 * i])
  local tau = tonumber(ARGV[3 + 2 * i])
  local tat = tats[i]
  if allowed == 1 then
    tat = tat + n * T
    -- Expire once the window is idle again: a key that vanished early would
    -- admit early. Expiring late costs nothing (an old TAT reads as idle).
    -- '%.0f' because Lua 5.1's tostring keeps only 14 digits.
    redis.call('SET', KEYS[i], string.format('%.0f', tat), 'PX', math.ceil((tat - now) / 1000) + slack)
  end
  local r = math.floor((now + tau + T - tat) / T)
  if remaining < 0 or r < remaining then
    remaining = r
  end
  if tat - now > reset then
    reset = tat - now
  end
end
if remaining < 0 then
  remaining = 0
end

return {allowed, remaining, retry, reset, now}
