"""What keeps the server safe: the checks made before a request is read, the token, the
security headers on every answer, and the store's password kept out of every error.

:class:`Guard` is a pure ASGI middleware: a refused request's body is never read (a 100 MB
POST without a token costs nothing), and a body without a Content-Length is cut off at the
limit. :func:`authorised` checks the token again as a route dependency, which is what declares
it in the OpenAPI schema.
"""

from __future__ import annotations

import ipaddress
import re
import secrets
import urllib.parse
from typing import Annotated

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hpo.server._common import encode
from hpo.server._state import Server

__all__ = ["MAX_BODY", "MAX_DETAIL", "Guard", "Scrub", "authorised"]

#: Request bodies above this are refused (413) before they are read.
MAX_BODY = 1 << 20
#: Error details are cut to this many characters (a 400,000-parameter ask once made 4 MB).
MAX_DETAIL = 1000

# Sent with every answer: no framing by other sites (clickjacking), no MIME sniffing.
_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
]
# The page: its own scripts only (plotly is vendored); plotly sets inline styles.
_PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
_API_CSP = "default-src 'none'; frame-ancestors 'none'"
# FastAPI's /docs and /redoc load their scripts from a CDN: only framing is limited there.
_DOCS_CSP = "frame-ancestors 'none'"

bearer = HTTPBearer(auto_error=False, description="The server's token (--token / HPO_TOKEN).")


def authorised(
    server: Server,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> None:
    """The token, as a route dependency: :class:`Guard` has checked it before the body was
    read; this declares it in the schema (only on an app with a token) and checks again."""
    given = creds.credentials if creds is not None else ""
    token = server.token
    if token is None or not secrets.compare_digest(given.encode(), token.encode()):
        raise HTTPException(401, "wrong token.", headers={"WWW-Authenticate": "Bearer"})


class Scrub:
    """Takes the store's password out of text bound for a client (a driver's error can quote
    the URL it was given), and caps its length."""

    def __init__(self, url: str) -> None:
        from hpo.storage import mask_url

        self._mask = mask_url
        found = re.search(r"://[^:/?#@\s]*:([^/?#\s]*)@", url)
        pw = found.group(1) if found else ""
        self._secrets = sorted(
            {p for p in (pw, urllib.parse.unquote(pw)) if len(p) >= 3}, key=len, reverse=True
        )

    def __call__(self, text: str, limit: int = MAX_DETAIL) -> str:
        text = self._mask(text)
        for secret in self._secrets:
            text = text.replace(secret, "***")
        if len(text) > limit:
            text = f"{text[: limit - 40]}... ({len(text) - limit + 40} more characters)"
        return text


def _loopback_name(host_header: str) -> bool:
    """Whether a Host header (``name[:port]``) names this machine's loopback."""
    try:
        name = urllib.parse.urlsplit(f"//{host_header}").hostname or ""
    except ValueError:  # not a host name at all ("[::1" and the like)
        return False
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _netloc(url: str) -> str | None:
    """The ``host[:port]`` of a URL such as an Origin header (None when it is not a URL)."""
    try:
        return urllib.parse.urlsplit(url).netloc
    except ValueError:
        return None


class Guard:
    """What is decided before the app reads a request: the Host and Origin checks (other
    sites), the token, the body's size; then the security headers on every answer, and the
    study name taken from the raw path (so that an encoded '/' stays in the name).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        token: str | None,
        token_reads: bool,
        max_body: int,
        scrub: Scrub,
    ) -> None:
        self.app = app
        self.token = token
        self.token_reads = token_reads
        self.max_body = max_body
        self.scrub = scrub

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        send = self._headers(send, path)
        headers = Headers(scope=scope)
        refusal = self._refusal(scope["method"], path, headers)
        if refusal is not None:
            await self._answer(send, *refusal)
            return
        if scope["method"] not in ("GET", "HEAD", "OPTIONS") or "content-length" in headers:
            body = await self._body(receive, headers)
            if body is None:
                await self._answer(
                    send,
                    413,
                    "PayloadTooLarge",
                    f"the request body is over the limit of {self.max_body} bytes.",
                )
                return
            receive = _replay(body)
        if path.startswith("/api/studies/"):
            scope = {**scope, "path": _name_path(scope)}
        await self.app(scope, receive, send)

    def _refusal(self, method: str, path: str, headers: Headers) -> tuple[int, str, str] | None:
        # Without a token the server trusts whoever reaches it, which a loopback bind limits
        # to this machine, but a browser on this machine runs other sites' code too: a page
        # could POST here (cross-site request forgery), or rename itself onto 127.0.0.1 and
        # read (DNS rebinding). A browser names the page's site in Origin and the name it
        # asked for in Host; tools such as curl and hpo.client send no Origin and a loopback
        # Host.
        host = headers.get("host", "")
        if self.token is None and not _loopback_name(host):
            return (
                421,
                "MisdirectedRequest",
                f"this server answers loopback names only (127.0.0.1, localhost), got Host "
                f"{host!r}; to serve other names, give it a token (--token).",
            )
        origin = headers.get("origin")
        write = method not in ("GET", "HEAD", "OPTIONS")
        if write and origin is not None and _netloc(origin) != host:
            return (
                403,
                "Forbidden",
                f"cross-site write refused: the request comes from a page at {origin}, not "
                f"from this server ({host}).",
            )
        if self.token is None:
            return None
        read = path.startswith("/api/") and path != "/api/config" and method != "OPTIONS"
        if not (write or (self.token_reads and read)):
            return None
        return self._token_refusal(self.token, headers.get("authorization", ""))

    def _token_refusal(self, token: str, given: str) -> tuple[int, str, str] | None:
        scheme, _, credentials = given.partition(" ")
        if scheme.lower() == "bearer" and secrets.compare_digest(
            credentials.strip().encode(), token.encode()
        ):
            return None
        if not given:
            what = "writes and reads" if self.token_reads else "writes"
            return (
                401,
                "Unauthorized",
                f"this server needs a token for {what}: send the header "
                "'Authorization: Bearer <token>'.",
            )
        return 401, "Unauthorized", "wrong token."

    async def _body(self, receive: Receive, headers: Headers) -> bytes | None:
        """The whole body, or None when it is over the limit (read no further)."""
        length = headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_body):
            return None
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)

    async def _answer(self, send: Send, status: int, kind: str, detail: str) -> None:
        body = encode({"detail": self.scrub(detail), "error": kind})
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
        if status == 401:
            headers.append((b"www-authenticate", b"Bearer"))
        if status == 413:
            headers.append((b"connection", b"close"))  # the unread body is not waited for
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    @staticmethod
    def _headers(send: Send, path: str) -> Send:
        if path == "/" or path.startswith("/static/"):
            csp = _PAGE_CSP
        elif path in ("/docs", "/redoc") or path.startswith("/docs/"):
            csp = _DOCS_CSP
        else:
            csp = _API_CSP
        extra = [*_HEADERS, (b"content-security-policy", csp.encode())]

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        return sending


def _replay(body: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.disconnect"}

    return receive


def _name_path(scope: Scope) -> str:
    """The path with the study's name segment taken from the raw path and percent-encoded
    again, so that the router sees one segment whatever the name holds ('/' included); the
    endpoints decode it (``Studies.get``)."""
    raw = scope.get("raw_path")
    if not raw:
        return str(scope["path"])
    parts = raw.decode("latin-1").split("/")  # "", "api", "studies", NAME, ...
    if len(parts) < 4:
        return str(scope["path"])
    name = urllib.parse.unquote(parts[3])
    rest = [urllib.parse.unquote(p) for p in parts[4:]]
    return "/".join(["", "api", "studies", urllib.parse.quote(name, safe=""), *rest])
