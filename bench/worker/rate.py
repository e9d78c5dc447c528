#!/usr/bin/python3
"""Read ts-worker's stdout (one JSON line per finished task) and report the
delivery rate between the first and the last line: startup (joining the
group) is not delivery. Prints one JSON object:
{"tasks","delivered","seconds","per_second"}. Usage: rate.py EXPECTED
(stops reading at EOF; EXPECTED is only reported against)."""
import json
import sys
import time

expected = int(sys.argv[1])
first = last = None
n = delivered = 0
for line in sys.stdin:
    now = time.monotonic()
    if first is None:
        first = now
    last = now
    n += 1
    try:
        if json.loads(line).get("status") == "delivered":
            delivered += 1
    except ValueError:
        pass
secs = (last - first) if first is not None else 0.0
print(json.dumps({"expected": expected, "tasks": n, "delivered": delivered,
                  "seconds": round(secs, 3),
                  "per_second": round((n - 1) / secs, 1) if secs > 0 else 0}))
