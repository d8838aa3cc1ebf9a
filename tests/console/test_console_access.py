"""The console's access rules, pure: token, Host allow-list, same-origin commands."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exposure_ctrl.console.access import AccessPolicy, is_loopback, new_token, split_host

TOKEN = "t" * 20 + "-secret"


def _headers(host: str, **more: str) -> dict[str, str]:
    return {"Host": host, **more}


def _post(policy: AccessPolicy, host: str, **more: str):
    return policy.check(method="POST", headers=_headers(host, **more), query_token=TOKEN, cookie_token=None)


@pytest.mark.parametrize("bind", ["127.0.0.1", "0.0.0.0", "192.168.1.20", "::"])
def test_without_the_token_every_request_is_refused_whatever_the_bind(bind: str) -> None:
    p = AccessPolicy(bind, 8765, TOKEN)
    host = "127.0.0.1:8765" if bind in ("127.0.0.1", "0.0.0.0", "::") else f"{bind}:8765"
    for qt, ct in [(None, None), ("", ""), ("wrong-token-wrong-token", None), (None, TOKEN[:-1]), (TOKEN + "x", None)]:
        denied = p.check(method="GET", headers=_headers(host), query_token=qt, cookie_token=ct)
        assert denied is not None and denied.status == 403
        assert "?token=" in denied.reason
    assert p.check(method="GET", headers=_headers(host), query_token=TOKEN, cookie_token=None) is None
    assert p.check(method="GET", headers=_headers(host), query_token=None, cookie_token=TOKEN) is None


def test_beyond_loopback_is_known_and_printed_urls_carry_the_token() -> None:
    assert not AccessPolicy("127.0.0.1", 1, TOKEN).beyond_loopback
    assert AccessPolicy("0.0.0.0", 1, TOKEN).beyond_loopback
    assert AccessPolicy("192.168.1.20", 1, TOKEN).beyond_loopback
    assert AccessPolicy("127.0.0.1", 8765, TOKEN).url() == f"http://127.0.0.1:8765/?token={TOKEN}"
    assert AccessPolicy("0.0.0.0", 8765, TOKEN).url(host="10.0.0.5") == f"http://10.0.0.5:8765/?token={TOKEN}"
    assert AccessPolicy("::1", 9, TOKEN).url().startswith("http://[::1]:9/?token=")


def test_tokens_are_random_and_long() -> None:
    tokens = {new_token() for _ in range(50)}
    assert len(tokens) == 50 and min(len(t) for t in tokens) >= 40
    with pytest.raises(ValueError, match="16 characters"):
        AccessPolicy("127.0.0.1", 1, "short")


@pytest.mark.parametrize(
    ("bind", "host", "ok"),
    [
        ("127.0.0.1", "127.0.0.1:8765", True),
        ("127.0.0.1", "localhost:8765", True),
        ("127.0.0.1", "[::1]:8765", True),
        ("127.0.0.1", "127.0.0.1:8766", False),  # another port
        ("127.0.0.1", "127.0.0.1", False),  # no port: 80
        ("127.0.0.1", "evil.example:8765", False),  # DNS rebinding
        ("127.0.0.1", "", False),
        ("127.0.0.1", "127.0.0.1:8765/x", False),
        ("127.0.0.1", "user@127.0.0.1:8765", False),
        ("192.168.1.20", "192.168.1.20:8765", True),
        ("192.168.1.20", "192.168.1.21:8765", False),
        ("0.0.0.0", "clinic-pc.local:8765", True),  # every interface: the token decides
        ("0.0.0.0", "clinic-pc.local:1", False),
    ],
)
def test_host_allow_list(bind: str, host: str, ok: bool) -> None:
    p = AccessPolicy(bind, 8765, TOKEN)
    assert p.host_allowed(host) is ok
    denied = p.check(method="GET", headers=_headers(host), query_token=TOKEN, cookie_token=None)
    assert (denied is None) is ok
    if not ok:
        assert denied is not None and denied.status == 421


def test_commands_must_come_from_the_console_page() -> None:
    p = AccessPolicy("127.0.0.1", 8765, TOKEN)
    host = "127.0.0.1:8765"
    good = {"Origin": "http://127.0.0.1:8765", "Content-Type": "application/json", "Sec-Fetch-Site": "same-origin"}
    assert _post(p, host, **good) is None
    assert _post(p, host, **{**good, "Content-Type": "application/json; charset=utf-8"}) is None
    no_origin = {k: v for k, v in good.items() if k != "Origin"}
    assert _post(p, host, **no_origin).status == 403
    assert "Origin" in _post(p, host, **{**good, "Origin": "http://evil.example"}).reason
    assert _post(p, host, **{**good, "Origin": "https://127.0.0.1:8765"}).status == 403
    assert _post(p, host, **{**good, "Origin": "null"}).status == 403
    assert "Sec-Fetch-Site" in _post(p, host, **{**good, "Sec-Fetch-Site": "cross-site"}).reason
    assert _post(p, host, **{**good, "Sec-Fetch-Site": "same-site"}).status == 403
    # a cross-site HTML form can only send these content types
    for ctype in ("application/x-www-form-urlencoded", "multipart/form-data", "text/plain", ""):
        assert _post(p, host, **{**good, "Content-Type": ctype}).status == 415
    # reading is not a command
    assert p.check(method="GET", headers=_headers(host), query_token=TOKEN, cookie_token=None) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:8765", ("127.0.0.1", 8765)),
        ("LOCALHOST:1", ("localhost", 1)),
        ("[::1]:80", ("::1", 80)),
        ("[::1]", ("::1", None)),
        ("::1", ("::1", None)),
        ("host", ("host", None)),
    ],
)
def test_split_host(text: str, expected: tuple[str, int | None]) -> None:
    assert split_host(text) == expected


@pytest.mark.parametrize("text", ["", ":80", "h:0", "h:70000", "h:x", "[::1", "[::1]x", "a b:1", "h/p:1", "a@b:1"])
def test_split_host_refuses_malformed(text: str) -> None:
    with pytest.raises(ValueError):
        split_host(text)


@given(st.text(max_size=40))
def test_any_host_header_gets_a_verdict_never_a_crash(text: str) -> None:
    p = AccessPolicy("127.0.0.1", 8765, TOKEN)
    assert p.host_allowed(text) in (True, False)
    try:
        host, port = split_host(text)
    except ValueError:
        return
    assert host and (port is None or 0 < port < 65536)


@given(st.text(max_size=60))
def test_any_presented_token_but_ours_is_refused(text: str) -> None:
    p = AccessPolicy("127.0.0.1", 8765, TOKEN)
    assert p.token_ok(text) is (text == TOKEN)


def test_is_loopback() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("127.1.2.3") and is_loopback("::1")
    assert is_loopback("[::1]") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("::") and not is_loopback("10.0.0.1")
    assert not is_loopback("example.org")
