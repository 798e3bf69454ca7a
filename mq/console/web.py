"""The console's HTTP side: the JSON API under ``/api/``, the static front end, and the guards around both.

Guards, each against a way a browser can be turned against a console on a trusted machine:

- **DNS rebinding**: a request whose ``Host`` is a DNS name other than ``localhost`` is refused (421), so a
  page of another site whose name was made to resolve to 127.0.0.1 cannot read or drive the console. IP
  addresses are accepted as they are (rebinding needs a name).
- **Cross-site requests**: every state-changing request is a POST with a JSON body (``Content-Type:
  application/json``, which a plain HTML form cannot send) and the ``X-CSRF-Token`` header carrying the token
  of this console process (from ``GET /api/session``, which another origin cannot read).
- **Size**: a POST body past ``max_body_bytes`` is discarded as it arrives and answered 413; API requests in
  flight are capped (503 past ``max_concurrent_requests``); every list a route returns is bounded.
- **Framing and scripts**: a Content-Security-Policy that allows only the console's own scripts and styles.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import mimetypes
import os
import secrets
from typing import Any, Dict, Optional

import attr
from twisted.internet import defer
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web import pages, resource, server

from mq.admin.api import AdminError, ResponseError, UnreachableError, UsageError
from mq.admin.output import jsonable
from mq.console import dlq, monitor, ops, paging, track  # noqa: F401 - register their routes
from mq.console.forms import ROUTES, BadRequest, Context, Form, NotFound
from mq.console.sessions import COOKIE, LoginFailed
from mq.console.users import TooManyLogins
from mq.console.views import CONSOLE_WIDE_ROUTES, OPEN_ROUTES
from mq.remoting.codes import ResponseCode as RC

log = Logger()

STATIC_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")
SECURITY_HEADERS = {
    b"Content-Security-Policy": b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                                b"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    b"X-Content-Type-Options": b"nosniff",
    b"X-Frame-Options": b"DENY",
    b"Referrer-Policy": b"no-referrer",
}


def new_csrf_token() -> str:
    return secrets.token_urlsafe(32)


def host_allowed(host: Optional[bytes]) -> bool:
    """A ``Host`` header naming an IP address (with or without port) or ``localhost``."""
    if not host:
        return False
    text = host.decode("latin-1").strip().lower()
    if text.startswith("["):  # [v6]:port
        name = text[1:text.find("]")] if "]" in text else ""
    else:
        name = text.rsplit(":", 1)[0] if text.count(":") == 1 else text
    if name == "localhost":
        return True
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def cross_site(request: server.Request) -> Optional[str]:
    """Why an API request comes from another site's page, or None.

    A GET needs no CSRF token, so without this check any web page the operator opens could make their browser
    fire heavy reads at a console on localhost (a DLQ export, thousands of message pages) and hold its request
    slots. Browsers say where a request comes from: ``Sec-Fetch-Site`` (only ``same-origin``, or ``none`` for
    an address typed in, is the console's own page; ``same-site`` includes other ports of the same host), and
    ``Origin``, which must name the host the request was sent to. Tools that send neither (curl, tests) pass.
    """
    def header(name: bytes) -> str:
        return (request.getHeader(name) or b"").decode("latin-1").strip().lower()

    fetch_site = header(b"sec-fetch-site")
    if fetch_site and fetch_site not in ("same-origin", "none"):
        return f"The console's API does not answer requests from other sites' pages (Sec-Fetch-Site: {fetch_site[:20]})."
    origin = header(b"origin")  # "null" too: a sandboxed or file: page
    if origin and origin.split("://", 1)[-1] != header(b"host"):
        return "The console's API answers only its own pages (the Origin header names another site)."
    return None


class ConsoleRequest(server.Request):
    """A request whose body is kept only up to ``site.max_body_bytes``; past that it is dropped as it comes."""

    body_too_large = False
    _body_seen = 0

    def handleContentChunk(self, data: bytes) -> None:
        self._body_seen += len(data)
        limit = getattr(self.channel.site, "max_body_bytes", 0) if self.channel is not None else 0
        if limit and self._body_seen > limit:
            self.body_too_large = True
            return
        super().handleContentChunk(data)


def _write_json(request: server.Request, status: int, data: Any) -> None:
    if getattr(request, "_disconnected", False) or request.finished:
        return
    body = json.dumps(data, ensure_ascii=False, default=jsonable).encode("utf-8")
    request.setResponseCode(status)
    request.setHeader(b"Content-Type", b"application/json; charset=utf-8")
    request.setHeader(b"Cache-Control", b"no-store")
    request.setHeader(b"Content-Length", str(len(body)).encode())
    request.write(body)
    request.finish()


def error_status(error: BaseException) -> int:
    """The HTTP status of a failed API call."""
    if isinstance(error, (BadRequest, UsageError)):
        return 400
    if isinstance(error, NotFound):
        return 404
    if isinstance(error, TooManyLogins):
        return 429
    if isinstance(error, LoginFailed):
        return 403
    if isinstance(error, ResponseError) and error.code in (RC.TOPIC_NOT_EXIST, RC.SUBSCRIPTION_GROUP_NOT_EXIST):
        return 404
    if isinstance(error, UnreachableError):
        return 502
    if isinstance(error, AdminError):
        return 409
    return 500


class ApiResource(resource.Resource):
    """``/api/<route>``: GET fields from the query string, POST fields from a JSON object body."""

    isLeaf = True

    def __init__(self, ctx: Context) -> None:
        super().__init__()
        self.ctx = ctx
        self.in_flight = 0

    def render(self, request: server.Request):
        path = "/".join(p.decode("utf-8", "replace") for p in request.postpath)
        route = ROUTES.get(path)
        if route is None:
            _write_json(request, 404, {"error": f"no API route /api/{path[:80]}"})
            return server.NOT_DONE_YET
        method = request.method.decode("ascii", "replace")
        if method != route.method:
            request.setHeader(b"Allow", route.method.encode())
            _write_json(request, 405, {"error": f"/api/{path} takes {route.method}"})
            return server.NOT_DONE_YET
        try:
            form = self._form(request, route.method)
            unknown = set(form.values) - route.fields
            if unknown:
                raise BadRequest(f"unknown field {sorted(unknown)[0][:40]!r}")
        except BadRequest as e:
            _write_json(request, getattr(e, "status", 400), {"error": str(e)})
            return server.NOT_DONE_YET
        ctx = self._context(request, path)
        if ctx is None:
            _write_json(request, 401, {"error": "log in first", "loginRequired": True})
            return server.NOT_DONE_YET
        if ctx.read_only and route.method == "POST" and path not in OPEN_ROUTES:
            _write_json(request, 403, {"error": f"user {ctx.user} may only look: changes need an admin (role 1 in "
                                                f"the users file)"})
            return server.NOT_DONE_YET
        if not ctx.console_admin and path in CONSOLE_WIDE_ROUTES:
            _write_json(request, 403, {"error": f"/api/{path} changes the console for every user: it needs an admin "
                                                f"account, and {ctx.user} is not one"})
            return server.NOT_DONE_YET
        if self.in_flight >= self.ctx.config.max_concurrent_requests:
            _write_json(request, 503, {"error": "the console is busy: too many requests in flight, try again"})
            return server.NOT_DONE_YET
        self.in_flight += 1
        try:
            d = route.handler(ctx, form)
        except Exception:
            d = defer.fail(Failure())

        def done(result):
            self.in_flight -= 1
            if isinstance(result, Failure):
                error = result.value
                status = error_status(error)
                if status == 500:
                    log.failure("console: /api/{path} failed", result, path=path)
                    message = f"internal error: {type(error).__name__}"
                else:
                    message = str(error)
                _write_json(request, status, {"error": message})
            else:
                _write_json(request, 200, result)

        d.addBoth(done)
        return server.NOT_DONE_YET

    def _context(self, request: server.Request, path: str) -> Optional[Context]:
        """This request's context: with login on, acting as the session's account; None when a login is
        needed and there is none."""
        ctx = self.ctx
        if ctx.sessions is None:
            return ctx

        def set_cookie(session_id: Optional[str]) -> None:
            value = (session_id or "").encode()
            request.addCookie(COOKIE, value, path=b"/", httpOnly=True, sameSite="strict",
                              max_age=None if session_id else b"0")

        session_id = (request.getCookie(COOKIE) or b"").decode("ascii", "replace")
        session = ctx.sessions.get(session_id)
        peer = request.getClientAddress()
        client_host = getattr(peer, "host", "") or ""
        if session is None:
            if path not in OPEN_ROUTES:
                return None
            return attr.evolve(ctx, set_session_cookie=set_cookie, client_host=client_host)
        return attr.evolve(ctx, api=session.api, user=session.user, session_id=session.id,
                           set_session_cookie=set_cookie, read_only=not session.admin,
                           console_admin=session.console_admin, client_host=client_host)

    def _form(self, request: server.Request, method: str) -> Form:
        if method == "GET":
            values: Dict[str, Any] = {}
            for key, items in (request.args or {}).items():
                name = key.decode("utf-8", "replace")
                if len(items) != 1:
                    raise BadRequest(f"{name[:40]}: given {len(items)} times")
                values[name] = items[0].decode("utf-8", "replace")
            return Form(values)
        token = request.getHeader(b"x-csrf-token") or b""
        if not hmac.compare_digest(token, self.ctx.csrf_token.encode()):
            raise _Forbidden("missing or wrong X-CSRF-Token header (reload the page)")
        ctype = (request.getHeader(b"content-type") or b"").split(b";")[0].strip().lower()
        if ctype != b"application/json":
            raise _Status(415, "the body must be JSON (Content-Type: application/json)")
        if getattr(request, "body_too_large", False):
            raise _Status(413, f"the body is larger than {self.ctx.config.max_body_bytes} bytes")
        request.content.seek(0)
        raw = request.content.read(self.ctx.config.max_body_bytes + 1)
        try:
            data = json.loads(raw.decode("utf-8")) if raw.strip() else {}
        except (UnicodeDecodeError, ValueError):
            raise BadRequest("the body is not JSON") from None
        except RecursionError:
            # 200,000 "[" exhaust the parser's stack: bad input like any other, not a 500 and a traceback.
            raise BadRequest("the body is not JSON (nested too deeply)") from None
        if not isinstance(data, dict):
            raise BadRequest("the body must be a JSON object")
        return Form(data)


class _Status(BadRequest):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class _Forbidden(_Status):
    def __init__(self, message: str) -> None:
        super().__init__(403, message)


class StaticFiles(resource.Resource):
    """The front end: the files of ``static/`` read once at start, served by exact name (no listing)."""

    isLeaf = True

    def __init__(self, directory: str = STATIC_DIR) -> None:
        super().__init__()
        self.files: Dict[str, tuple] = {}
        for name in sorted(os.listdir(directory)):
            path = os.path.join(directory, name)
            if os.path.isfile(path):
                ctype = mimetypes.guess_type(name)[0] or "application/octet-stream"
                if ctype.startswith("text/") or ctype.endswith("javascript"):
                    ctype += "; charset=utf-8"
                with open(path, "rb") as f:
                    self.files[name] = (ctype.encode(), f.read())

    def render_GET(self, request: server.Request) -> bytes:
        name = "/".join(p.decode("utf-8", "replace") for p in request.postpath)
        found = self.files.get(name)
        if found is None:
            request.setResponseCode(404)
            request.setHeader(b"Content-Type", b"text/plain; charset=utf-8")
            return b"not found\n"
        request.setHeader(b"Content-Type", found[0])
        request.setHeader(b"Cache-Control", b"no-cache")
        return found[1]


class Root(resource.Resource):
    """``/`` (the front end's page), ``/static/<file>`` and ``/api/…``, behind the Host check and headers."""

    def __init__(self, ctx: Context) -> None:
        super().__init__()
        self.static = StaticFiles()
        self.api = ApiResource(ctx)

    def getChildWithDefault(self, name: bytes, request: server.Request):
        for header, value in SECURITY_HEADERS.items():
            request.setHeader(header, value)
        if not host_allowed(request.getHeader(b"host")):
            return pages.errorPage(421, "Misdirected Request",
                                   "The console answers only requests addressed to an IP address or localhost.")
        if name == b"api":
            why = cross_site(request)
            if why is not None:
                return pages.errorPage(403, "Forbidden", why)
            return self.api
        if name == b"static":
            return self.static
        if name == b"":
            request.postpath = [b"index.html"]
            return self.static
        return pages.notFound()


class ConsoleSite(server.Site):
    requestFactory = ConsoleRequest

    def __init__(self, ctx: Context) -> None:
        super().__init__(Root(ctx), timeout=60)
        self.max_body_bytes = ctx.config.max_body_bytes

    def log(self, request) -> None:
        """No access log: the pages poll every few seconds, which would drown the service's own log."""


def make_site(ctx: Context) -> ConsoleSite:
    if not ctx.csrf_token:
        ctx.csrf_token = new_csrf_token()
    return ConsoleSite(ctx)
