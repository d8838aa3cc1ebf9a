"""Who may use the console: the access token, the Host allow-list and the same-origin rule.

The console shows health data and moves the patient's scene, so every request is checked:

1. **Token.** A random token (``secrets.token_urlsafe``) is made when the server starts and is
   printed in its URL (``http://HOST:PORT/?token=…``). A request must carry it, in the query
   (the first visit) or in the cookie the first visit sets (``HttpOnly; SameSite=Strict``). The
   token is required whatever the bind address: beyond loopback it keeps the rest of the network
   out; on loopback it keeps other local users out, as the owner-only store file does
   (DESIGN.md invariant 4).
2. **Host.** The ``Host`` header must name this server (DNS-rebinding defence): on loopback only
   ``127.0.0.1``, ``localhost`` or ``[::1]`` with the right port; bound to one address, that
   address too; bound to every interface (``0.0.0.0``/``::``), any host (the token decides).
3. **Same origin for changes.** A state-changing request (POST) must be JSON and carry an
   ``Origin`` equal to ``http://<Host>``; ``Sec-Fetch-Site``, when the browser sends it, must be
   ``same-origin``. A page on another site can neither read the console nor post a command to it.

Everything here is pure (headers in, a verdict out), so it is tested without a server.
"""

from __future__ import annotations

import dataclasses
import hmac
import ipaddress
import secrets
from collections.abc import Mapping
from urllib.parse import quote, urlsplit

__all__ = [
    "AccessPolicy",
    "Denied",
    "new_token",
    "is_loopback",
    "split_host",
    "TOKEN_PARAM",
    "TOKEN_COOKIE",
]

TOKEN_PARAM = "token"
TOKEN_COOKIE = "exposure_console"

_LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")
_ANY = ("0.0.0.0", "::", "")


def new_token() -> str:
    """A fresh random access token (32 bytes of entropy, URL-safe)."""
    return secrets.token_urlsafe(32)


def is_loopback(host: str) -> bool:
    """``True`` for ``127.x.x.x``, ``::1`` and ``localhost``; ``False`` for anything else,
    including ``0.0.0.0`` (every interface)."""
    h = host.strip().strip("[]").lower()
    if h == "localhost":
        return True
    try:
        return ipaddress.ip_address(h).is_loopback
    except ValueError:
        return False


def split_host(value: str) -> tuple[str, int | None]:
    """``"127.0.0.1:8765"`` → ``("127.0.0.1", 8765)``; ``"[::1]:80"`` → ``("::1", 80)``;
    ``"host"`` → ``("host", None)``. Raises ``ValueError`` on a malformed value."""
    v = value.strip()
    if not v or any(c.isspace() or c in "/?#@\\" for c in v):
        raise ValueError(f"malformed host {value!r}")
    if v.startswith("["):
        end = v.find("]")
        if end < 0:
            raise ValueError(f"malformed host {value!r}")
        host, rest = v[1:end], v[end + 1 :]
        if rest and not rest.startswith(":"):
            raise ValueError(f"malformed host {value!r}")
        port_text = rest[1:] if rest else None
    elif v.count(":") == 1:
        host, port_text = v.split(":")
    elif ":" in v:  # a bare IPv6 address
        host, port_text = v, None
    else:
        host, port_text = v, None
    if not host:
        raise ValueError(f"malformed host {value!r}")
    if port_text is None:
        return host.lower(), None
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"malformed port in host {value!r}")
    return host.lower(), int(port_text)


@dataclasses.dataclass(frozen=True)
class Denied:
    """Why a request was refused: the HTTP status and a sentence for the person who sent it."""

    status: int
    reason: str


@dataclasses.dataclass(frozen=True)
class AccessPolicy:
    """The rules of one running console (see the module docstring).

    ``bind`` is the address the server listens on, ``port`` its port (known once bound).
    """

    bind: str
    port: int
    token: str = dataclasses.field(default_factory=new_token, repr=False)

    def __post_init__(self) -> None:
        if len(self.token) < 16:
            raise ValueError("an access token needs at least 16 characters")

    @property
    def beyond_loopback(self) -> bool:
        return not is_loopback(self.bind)

    @property
    def every_interface(self) -> bool:
        return self.bind.strip().strip("[]") in _ANY

    def url(self, path: str = "/", host: str | None = None) -> str:
        """The URL to open, token included. ``host``: the name to print (default: the bind
        address; for ``0.0.0.0`` the caller should pass the machine's address)."""
        h = host or ("127.0.0.1" if self.every_interface else self.bind)
        if ":" in h and not h.startswith("["):
            h = f"[{h}]"
        return f"http://{h}:{self.port}{path}?{TOKEN_PARAM}={quote(self.token)}"

    # --- checks --------------------------------------------------------------------------------

    def host_allowed(self, host_header: str | None) -> bool:
        """Does the ``Host`` header name this server?"""
        if not host_header:
            return False
        try:
            host, port = split_host(host_header)
        except ValueError:
            return False
        if port is not None and port != self.port:
            return False
        if port is None and self.port != 80:
            return False
        if self.every_interface:
            return True
        if host in _LOOPBACK_NAMES:
            return True
        return host == self.bind.strip().strip("[]").lower()

    def token_ok(self, presented: str | None) -> bool:
        """Constant-time comparison of a presented token with ours."""
        if not presented:
            return False
        return hmac.compare_digest(presented.encode("utf-8", "replace"), self.token.encode("utf-8"))

    def check(
        self,
        *,
        method: str,
        headers: Mapping[str, str],
        query_token: str | None,
        cookie_token: str | None,
    ) -> Denied | None:
        """``None`` if the request may proceed, else why not. ``headers`` must be
        case-insensitive (aiohttp's are)."""
        if not self.host_allowed(headers.get("Host")):
            return Denied(421, "this console does not answer to that host name")
        if not (self.token_ok(query_token) or self.token_ok(cookie_token)):
            return Denied(
                403,
                "access token missing or wrong: open the console with the URL printed when it "
                "started (it ends in ?token=…)",
            )
        if method.upper() not in ("GET", "HEAD", "OPTIONS"):
            denied = self.check_same_origin(headers)
            if denied is not None:
                return denied
        return None

    def check_same_origin(self, headers: Mapping[str, str]) -> Denied | None:
        """The same-origin rule of state-changing requests."""
        site = headers.get("Sec-Fetch-Site")
        if site is not None and site not in ("same-origin", "none"):
            return Denied(403, f"cross-site request refused (Sec-Fetch-Site: {site})")
        origin = headers.get("Origin")
        if not origin:
            return Denied(403, "a command must come from the console's own page (no Origin)")
        parts = urlsplit(origin)
        if parts.scheme != "http" or parts.netloc.lower() != (headers.get("Host") or "").lower():
            return Denied(403, f"cross-site request refused (Origin {origin!r})")
        ctype = headers.get("Content-Type", "").split(";")[0].strip().lower()
        if ctype != "application/json":
            return Denied(415, "a command is a JSON body (Content-Type: application/json)")
        return None
