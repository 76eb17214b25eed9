"""A stand-in Slack Web API for the Docker smoke test: every method answers ok (auth.test included).

`python3 fake_slack.py PORT [HOST]` serves http://HOST:PORT/api/<method> until killed. Stdlib only,
so it runs on the host or in the base image. The real fake (tests/fakes/slack.py) needs the test
dependencies; readiness only needs a token check that succeeds.
"""

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

AUTH = {"ok": True, "url": "https://fake.slack.com/", "team": "Fake", "user": "greenlight",
        "team_id": "T0FAKE", "user_id": "U0BOT", "bot_id": "B0BOT", "is_enterprise_install": False}


class Handler(BaseHTTPRequestHandler):
    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        body = json.dumps(AUTH if self.path.rstrip("/").endswith("auth.test") else {"ok": True}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, *args: object) -> None:
        pass


if __name__ == "__main__":
    port = int(sys.argv[1])
    host = sys.argv[2] if len(sys.argv) > 2 else "127.0.0.1"
    ThreadingHTTPServer((host, port), Handler).serve_forever()
