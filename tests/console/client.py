"""The console's JSON API from plain test code (urllib), and the bench clients that give it real data."""

from __future__ import annotations

import http.cookiejar
import json
import subprocess
import sys
import urllib.error
import urllib.request

from tests.support.processes import child_env


class Console:
    """The console's JSON API as a script would use it (to seed data, and to check what clicks did)."""

    def __init__(self, port: int) -> None:
        self.base = f"http://127.0.0.1:{port}"
        self.token = ""
        #: keeps the session cookie of a login, as a browser does
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))

    def call(self, path: str, data=None):
        """The answer's JSON; an HTTP error status raises ``urllib.error.HTTPError`` (see ``refusal``)."""
        if data is None:
            req = urllib.request.Request(f"{self.base}/api/{path}")
        else:
            if not self.token:
                self.token = self.call("session")["csrf"]
            req = urllib.request.Request(f"{self.base}/api/{path}", json.dumps(data).encode(), method="POST",
                                         headers={"Content-Type": "application/json", "X-CSRF-Token": self.token})
        with self.opener.open(req, timeout=30) as resp:
            return json.loads(resp.read())


def bench(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "mq.bench.cli", *args], env=child_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def refusal(console: Console, path: str, data=None):
    """(status, error text) of a call the console must refuse."""
    try:
        answer = console.call(path, data)
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())["error"]
    raise AssertionError(f"{path} was not refused: {answer!r}")
