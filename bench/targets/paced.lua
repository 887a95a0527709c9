-- Each connection pauses ~10 ms between requests: a fixed, moderate pace (latency, not throughput).
function delay()
  return 10
end
