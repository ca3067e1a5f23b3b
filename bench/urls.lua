-- wrk script: each request asks for a random tile from a URL list file.
-- Usage: wrk -t1 -c8 -d15s -s bench/urls.lua http://127.0.0.1:PORT -- urls.txt [seed]
-- The list holds one path per line (/world/3/4/2.png). The random sequence is
-- seeded (default 42, plus the thread number) so every server sees the same
-- requests. done() prints one parseable line:
-- BENCH requests=N duration_s=S rps=R p50_ms=A p90_ms=B p99_ms=C errors=E non2xx=F

local paths = {}
local counter = 0
local threads = {}

function setup(thread)
   counter = counter + 1
   thread:set("id", counter)
   table.insert(threads, thread)
end

function init(args)
   local file = assert(io.open(args[1] or "urls.txt", "r"))
   for line in file:lines() do
      if #line > 0 then
         paths[#paths + 1] = line
      end
   end
   file:close()
   assert(#paths > 0, "empty URL list")
   math.randomseed(tonumber(args[2] or "42") + (id or 0))
end

function request()
   return wrk.format("GET", paths[math.random(#paths)])
end

function done(summary, latency, requests)
   local e = summary.errors
   local seconds = summary.duration / 1e6
   io.write(string.format(
      "BENCH requests=%d duration_s=%.3f rps=%.1f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f errors=%d non2xx=%d\n",
      summary.requests, seconds, summary.requests / seconds,
      latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
      e.connect + e.read + e.write + e.timeout, e.status))
end
