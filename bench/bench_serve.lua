-- wrk script for bench/bench_serve.sh: POST /predict with one title per request,
-- cycling through varied titles and counts (a single repeated body would let
-- caches flatter the numbers).
local titles = {
  "I tried the 5am routine for 30 days 😱", "3 ingredient pasta, no cap", "POV: you finally fixed your sleep schedule",
  "This cat learned to open the fridge", "Top 10 budget gadgets under $20 #tech", "Day in my life as a nurse",
  "Why nobody talks about this trick", "Learn Python in 60 seconds", "He did NOT expect that ending 😂",
  "Rating every fast food fries", "My grandma reacts to TikTok trends", "The fastest way to fold a shirt",
  "Mini vlog: Tokyo at night", "Can I beat the world record?", "Unboxing the weirdest phone of 2025",
  "Street food in Bangkok for $5"
}
local i = 0
request = function()
  i = i + 1
  local t = titles[(i % #titles) + 1]
  local body = string.format('{"title":"%s","view_count":%d,"like_count":%d,"comment_count":%d,"duration_seconds":%d}',
                             t, 1000 + (i * 7919) % 900000, 10 + (i * 104729) % 50000, (i * 31) % 2000, 10 + i % 50)
  return wrk.format("POST", "/predict", {["Content-Type"] = "application/json"}, body)
end

done = function(summary, latency, requests)
  io.write(string.format("BENCH requests=%d duration_s=%.2f rps=%.1f p50_ms=%.2f p90_ms=%.2f p99_ms=%.2f max_ms=%.2f " ..
                         "errors_connect=%d errors_read=%d errors_write=%d errors_status=%d errors_timeout=%d\n",
    summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1e3, latency:percentile(90) / 1e3, latency:percentile(99) / 1e3, latency.max / 1e3,
    summary.errors.connect, summary.errors.read, summary.errors.write, summary.errors.status, summary.errors.timeout))
end
