#!/usr/bin/env python3
"""mock_llm.py PORTFILE — a mock OpenAI-compatible chat-completions server for
tests/test_ideas.sh (python3 stdlib only).  The first path segment picks the
answer: /valid (3 ideas), /bad (malformed JSON), /500 (HTTP 500), /slow
(answers after 3 s).  The last request body is written to PORTFILE.req."""
import http.server, json, sys, time

IDEAS = [{"title": "Ramen in 60 seconds", "reasoning": "short and fast"},
         {"title": "POV: ramen at 3am", "reasoning": "POV hooks"},
         {"title": "Cheap vs expensive ramen", "reasoning": "comparisons"}]


class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with open(sys.argv[1] + ".req", "wb") as f:
            f.write(body)
        mode = self.path.strip("/").split("/")[0]
        status, out = 200, json.dumps({"choices": [{"message": {"role": "assistant", "content": json.dumps(IDEAS)}}]})
        if mode == "bad":
            out = '{"choices": [ {"message": '
        elif mode == "500":
            status, out = 500, '{"error": "boom"}'
        elif mode == "slow":
            time.sleep(3)
        data = out.encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except OSError:
            pass  # the client gave up (the timeout case)


s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write(str(s.server_address[1]))
import os
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
s.serve_forever()
