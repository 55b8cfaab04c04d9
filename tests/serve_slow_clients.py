#!/usr/bin/env python3
"""serve_slow_clients.py PORT — slow-client check of miles-serve (issue 18), run by tests/test_serve.sh
against a server started with --max-conn-per-ip 64 --timeout 3.  Stops by itself (about 10 s).

* 600 connections from 127.0.0.2-127.0.0.11 (60 each) send a request line and then one header line every
  2 s, never finishing their headers;
* meanwhile GET /health from 127.0.0.1 every 0.25 s must answer within 1 s every time;
* the 600 must still be open at the end (the server holds them all, it does not drop them to keep up);
* 80 more from 127.0.0.12: 16 are closed at once by the per-IP cap (64);
* one connection that sends nothing is closed by the inactivity timeout (3 s).
Exits 1 on any failure; the last line is the summary."""
import http.client, resource, select, socket, sys, threading, time

PORT = int(sys.argv[1])
SLOW, PER_IP, EXTRA, DURATION = 600, 60, 80, 9.0
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))

def connect(src):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((src, 0))
    s.settimeout(2)
    s.connect(("127.0.0.1", PORT))
    s.setblocking(False)
    return s

def closed(s):
    """True when the server has closed s (EOF or reset)."""
    try:
        r, _, _ = select.select([s], [], [], 0)
        if not r:
            return False
        return s.recv(4096) == b""
    except (ConnectionResetError, BrokenPipeError, OSError):
        return True

fails = []
slow = []
for i in range(SLOW):
    s = connect("127.0.0.%d" % (2 + i // PER_IP))
    s.send(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    slow.append(s)
extra = [connect("127.0.0.12") for _ in range(EXTRA)]
idle = connect("127.0.0.13")
time.sleep(0.5)  # before the 3 s timeout: what is closed now was closed by the per-IP cap
closed_extra = sum(1 for s in extra if closed(s))

lat = []
def probe():
    t_end = time.time() + DURATION
    while time.time() < t_end:
        t0 = time.time()
        try:
            c = http.client.HTTPConnection("127.0.0.1", PORT, timeout=1.0)
            c.request("GET", "/health")
            r = c.getresponse()
            r.read()
            c.close()
            dt = time.time() - t0
            lat.append(dt)
            if r.status != 200 or dt > 1.0:
                fails.append("/health status %d after %.3f s" % (r.status, dt))
        except Exception as e:  # timeout, refused, reset
            fails.append("/health failed after %.3f s: %r" % (time.time() - t0, e))
        time.sleep(0.25)
th = threading.Thread(target=probe)
t_start = time.time()
th.start()
k = 0
idle_closed_at = None
while th.is_alive():
    time.sleep(2.0)
    k += 1
    for s in slow:
        try:
            s.send(b"X-Slow-%d: %s\r\n" % (k, b"a" * 8))
        except (BlockingIOError, ConnectionResetError, BrokenPipeError, OSError):
            pass
    if idle_closed_at is None and closed(idle):
        idle_closed_at = time.time() - t_start
th.join()
open_slow = sum(1 for s in slow if not closed(s))
if idle_closed_at is None and closed(idle):
    idle_closed_at = time.time() - t_start
if not lat:
    fails.append("no /health answer at all")
if open_slow < SLOW - 10:
    fails.append("only %d of %d slow connections still open" % (open_slow, SLOW))
if not EXTRA - 64 <= closed_extra <= EXTRA - 64 + 4:
    fails.append("per-IP cap 64: %d of %d connections from one address closed at once" % (closed_extra, EXTRA))
if idle_closed_at is None:
    fails.append("an idle connection was not closed by --timeout 3 within %.0f s" % DURATION)
for s in slow + extra + [idle]:
    s.close()
for f in fails[:5]:
    print("FAIL", f)
print("%d slow connections held (%d open at the end), /health answered %d times, max %.3f s; per-IP cap closed %d/%d;"
      " idle connection closed after %s s" % (SLOW, open_slow, len(lat), max(lat) if lat else -1, closed_extra, EXTRA,
                                              "%.1f" % idle_closed_at if idle_closed_at else "never"))
sys.exit(1 if fails else 0)
