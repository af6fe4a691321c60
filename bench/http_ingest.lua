-- wrk script for bench/http_ingest.py: single-fix requests as GPS apps send them.
-- Arguments (after --): format (osmand | owntracks | trivial), tokens file, start epoch ms,
-- "close" to ask for a new connection per request (or "keep"), the number of wrk threads.
-- Each wrk thread owns every threads-th device and gives each of its fixes a new time, so
-- that every (device, timestamp) sent is unique and each answer 200 is one stored fix.

local threads = {}
local counter = 0

function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  format = args[1]
  start_ms = tonumber(args[3])
  connection = args[4] == "close" and "close" or "keep-alive"
  tokens = {}
  local n = 0
  for line in io.lines(args[2]) do
    if n % tonumber(args[5]) == tid then table.insert(tokens, line) end
    n = n + 1
  end
  sent = {}
  for i = 1, #tokens do sent[i] = 0 end
  next_device = 1
  ok, other, rejected, busy = 0, 0, 0, 0
end

function request()
  local i = next_device
  next_device = next_device % #tokens + 1
  sent[i] = sent[i] + 1
  local ts = start_ms + sent[i] * 1000
  local lat = 39.9 + (i % 100) * 0.0001
  local lon = 116.4 + (sent[i] % 100) * 0.0001
  local headers = {["Connection"] = connection}
  if format == "osmand" then
    local path = string.format(
      "/osmand?id=%s&lat=%.6f&lon=%.6f&timestamp=%d&hdop=5&altitude=50&speed=1.2&bearing=90&batt=80",
      tokens[i], lat, lon, math.floor(ts / 1000))
    return wrk.format("GET", path, headers)
  elseif format == "owntracks" then
    headers["Content-Type"] = "application/json"
    local body = string.format(
      '{"_type":"location","tst":%d,"lat":%.6f,"lon":%.6f,"acc":5,"alt":50,"vel":4,"batt":80,"tid":"bb"}',
      math.floor(ts / 1000), lat, lon)
    return wrk.format("POST", "/owntracks/" .. tokens[i], headers, body)
  else
    return wrk.format("GET", "/", headers)
  end
end

function response(status, headers, body)
  if status == 200 then
    ok = ok + 1
    if format == "osmand" and string.find(body, '"rejected":%[%]') == nil then
      rejected = rejected + 1
    end
  else
    other = other + 1
    if status == 503 then busy = busy + 1 end
  end
end

function done(summary, latency, requests)
  local total_ok, total_other, total_rejected, total_busy = 0, 0, 0, 0
  for _, thread in ipairs(threads) do
    total_busy = total_busy + thread:get("busy")
    total_ok = total_ok + thread:get("ok")
    total_other = total_other + thread:get("other")
    total_rejected = total_rejected + thread:get("rejected")
  end
  io.write(string.format(
    'RESULT {"ok": %d, "other": %d, "busy": %d, "rejected": %d, "requests": %d, "duration_us": %d, ' ..
    '"connect_errors": %d, "read_errors": %d, "write_errors": %d, "timeouts": %d, ' ..
    '"status_errors": %d, "p50_us": %d, "p95_us": %d, "p99_us": %d, "max_us": %d}\n',
    total_ok, total_other, total_busy, total_rejected, summary.requests, summary.duration,
    summary.errors.connect, summary.errors.read, summary.errors.write, summary.errors.timeout,
    summary.errors.status, latency:percentile(50), latency:percentile(95), latency:percentile(99),
    latency.max))
end
