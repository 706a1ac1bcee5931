-- wrk script for bench/api_load.py (saturation phases).
-- wrk <url> -s api_load.lua -- <mode> <token> <templates file|-> <prefix> [offset]
--   mode "ping":  GET /v1/ping with the bearer token (the trivial endpoint's baseline)
--   mode "live":  GET /health/live (no authentication; context only)
--   mode "score": POST /v1/score, one application per request; every request has a new applicant id and an
--                 annual_income that differs by a cent per turn of the template list, so it is a new
--                 application and a cache miss (templates: "<base income>\t<JSON with __AID__ and __INC__>")
-- done() prints one line "JSON {...}" that bench/api_load_gen.py parses.

local mode, prefix
local templates = {}
local counter = 0
local headers = {}
local fixed
local threads = {}

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

function init(args)
  mode, prefix = args[1], args[4] or "w"
  counter = tonumber(args[5] or "0")
  headers["Authorization"] = "Bearer " .. args[2]
  headers["Accept"] = "application/json"
  if mode == "score" then
    headers["Content-Type"] = "application/json"
    for line in io.lines(args[3]) do
      local base, text = line:match("^([^\t]+)\t(.*)$")
      local a, rest = text:match("^(.-)__AID__(.*)$")
      local b, c = rest:match("^(.-)__INC__(.*)$")
      table.insert(templates, {base = tonumber(base), a = a, b = b, c = c})
    end
  elseif mode == "ping" then
    fixed = wrk.format("GET", "/v1/ping", headers)
  else
    fixed = wrk.format("GET", "/health/live", {})
  end
end

function request()
  if fixed then
    return fixed
  end
  counter = counter + 1
  local n = #templates
  local t = templates[(counter % n) + 1]
  local income = string.format("%.2f", t.base + math.floor(counter / n) * 0.01)
  local body = t.a .. prefix .. tid .. "-" .. counter .. t.b .. income .. t.c
  return wrk.format("POST", "/v1/score", headers, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'JSON {"requests":%d,"duration_us":%d,"bytes":%d,"connect":%d,"read":%d,"write":%d,"status":%d,' ..
    '"timeout":%d,"p50_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
