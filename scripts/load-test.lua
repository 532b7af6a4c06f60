-- wrk script for scripts/load-test.sh: a mix of valid and malformed requests to `transformer serve`,
-- with every answer's status counted (per thread, summed in `done`).
--   45 % POST /api/trace with a short valid text          -> 200 (or 503 when the model's queue is full);
--        half ask for everything, half for the page fragment only (`"include": ["html"]`, as the page does)
--   15 % POST /api/generate, 8 new tokens                  -> 200 (or 503)
--   10 % GET /api/info                                    -> 200
--   10 % malformed: broken JSON, wrong type, not UTF-8    -> 400
--   10 % over-long text: past --max-characters, or past the model's context -> 422
--   10 % oversized body (20 000 bytes, over --max-body)   -> 413

local json = { ["Content-Type"] = "application/json" }
local valid, generate, malformed, overlong = {}, {}, {}, {}
local info, oversized

local texts = { "ROMEO:", "First Citizen:", "To be, or not", "JULIET:\nO Romeo", "All:\nSpeak, speak.", "What say you?" }

function init(args)
  math.randomseed(os.time() + (tonumber(tostring({}):match("0x(%x+)"), 16) or 0) % 100000)
  for _, t in ipairs(texts) do
    local escaped = t:gsub("\n", "\\n")
    valid[#valid + 1] = wrk.format("POST", "/api/trace", json, '{"text": "' .. escaped .. '"}')
    valid[#valid + 1] = wrk.format("POST", "/api/trace", json, '{"text": "' .. escaped .. '", "include": ["html"]}')
    generate[#generate + 1] = wrk.format("POST", "/api/generate", json, '{"text": "' .. escaped .. '", "max_tokens": 8}')
  end
  malformed[1] = wrk.format("POST", "/api/trace", json, '{"text": "ROMEO')
  malformed[2] = wrk.format("POST", "/api/trace", json, '{"text": 5}')
  malformed[3] = wrk.format("POST", "/api/trace", json, '{"text": "\255\254\195"}')
  malformed[4] = wrk.format("POST", "/api/trace", json, '{"prompt": "ROMEO:"}')
  overlong[1] = wrk.format("POST", "/api/trace", json, '{"text": "' .. string.rep("a", 600) .. '"}')   -- characters
  overlong[2] = wrk.format("POST", "/api/trace", json, '{"text": "' .. string.rep("ab ", 30) .. '"}')  -- tokens
  info = wrk.format("GET", "/api/info")
  oversized = wrk.format("POST", "/api/trace", json, '{"text": "' .. string.rep("x", 20000) .. '"}')
end

function request()
  local r = math.random(100)
  if r <= 45 then return valid[math.random(#valid)]
  elseif r <= 60 then return generate[math.random(#generate)]
  elseif r <= 70 then return info
  elseif r <= 80 then return malformed[math.random(#malformed)]
  elseif r <= 90 then return overlong[math.random(#overlong)]
  else return oversized end
end

-- Counters are globals so that `done` can read them from each thread.
-- A trace answer has "attention", a generation "output", /api/info neither; a 503 says why.
s200trace, s200gen, s200, s400, s413, s422, s503busy, s503timeout, s5xx, sother = 0, 0, 0, 0, 0, 0, 0, 0, 0, 0

function response(status, headers, body)
  if status == 200 then
    if body:find('"attention"', 1, true) then s200trace = s200trace + 1
    elseif body:find('"output"', 1, true) then s200gen = s200gen + 1
    else s200 = s200 + 1 end
  elseif status == 400 then s400 = s400 + 1
  elseif status == 413 then s413 = s413 + 1
  elseif status == 422 then s422 = s422 + 1
  elseif status == 503 and body:find("busy, retry", 1, true) then s503busy = s503busy + 1
  elseif status == 503 and body:find("timed out", 1, true) then s503timeout = s503timeout + 1
  elseif status >= 500 then s5xx = s5xx + 1
  else sother = sother + 1 end
end

local threads = {}
function setup(thread) threads[#threads + 1] = thread end

function done(summary, latency, requests)
  local c = { s200trace = 0, s200gen = 0, s200 = 0, s400 = 0, s413 = 0, s422 = 0, s503busy = 0, s503timeout = 0, s5xx = 0, sother = 0 }
  for _, t in ipairs(threads) do
    for k, _ in pairs(c) do c[k] = c[k] + (t:get(k) or 0) end
  end
  local e = summary.errors
  local socket = e.connect + e.read + e.write + e.timeout
  local total = summary.requests
  -- Unexpected: 5xx other than the deliberate 503s, statuses outside the expected set, socket errors and timeouts.
  local unexpected = c.s5xx + c.sother + socket
  local seconds = summary.duration / 1e6
  io.write(string.format("RESULT requests=%d seconds=%.1f rps=%.1f p50_ms=%.2f p90_ms=%.2f p99_ms=%.2f max_ms=%.2f\n",
    total, seconds, total / seconds, latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000))
  io.write(string.format("RESULT status_200_trace=%d status_200_generate=%d status_200_info=%d status_400=%d status_413=%d status_422=%d status_503_busy=%d status_503_timed_out=%d status_5xx_other=%d status_other=%d\n",
    c.s200trace, c.s200gen, c.s200, c.s400, c.s413, c.s422, c.s503busy, c.s503timeout, c.s5xx, c.sother))
  io.write(string.format("RESULT socket_connect=%d socket_read=%d socket_write=%d socket_timeout=%d\n",
    e.connect, e.read, e.write, e.timeout))
  io.write(string.format("RESULT unexpected=%d error_rate=%.4f%% shed_503=%.2f%% traces_per_s=%.1f generations_per_s=%.1f\n",
    unexpected, total > 0 and 100 * unexpected / total or 0, total > 0 and 100 * (c.s503busy + c.s503timeout) / total or 0,
    c.s200trace / seconds, c.s200gen / seconds))
end
