"""Running the console: beside a session run from the command line, or on its own.

- :func:`serve_during`: ``exposure-ctrl run`` serves the console for the session it runs and
  stops it when the session is over.
- :func:`serve_forever`: ``exposure-ctrl console`` serves setup, live view and review until
  interrupted (a session started from the browser is ended and recorded first).
- :func:`console_urls`: the URL(s) to print, token included.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import logging
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from exposure_ctrl.console.access import is_loopback

if TYPE_CHECKING:
    from exposure_ctrl.console.server import ConsoleServer

__all__ = ["serve_during", "serve_forever", "console_urls"]

T = TypeVar("T")

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install aiohttp"


def _local_addresses() -> list[str]:
    """This machine's non-loopback IPv4 addresses known to the resolver (no traffic sent)."""
    try:
        _, _, addrs = socket.gethostbyname_ex(socket.gethostname())
    except OSError:
        return []
    return sorted({a for a in addrs if not is_loopback(a)})


def console_urls(console: ConsoleServer) -> list[str]:
    """The URLs a therapist can open: the bind address (or, bound to every interface, each of
    this machine's addresses), then loopback."""
    access = console.access
    if access is None:
        raise RuntimeError("the console is not started")
    if not access.every_interface:
        return [access.url("/")]
    addresses = _local_addresses() or [socket.gethostname()]
    return [access.url("/", host=a) for a in addresses] + [access.url("/", host="127.0.0.1")]


def _announce(console: ConsoleServer, announce: Callable[[str], None]) -> None:
    urls = console_urls(console)
    announce(f"console: {urls[0]}")
    for u in urls[1:]:
        announce(f"         {u}")
    if console.access is not None and console.access.beyond_loopback:
        announce("the console is reachable from the network: whoever has this URL (its token) can see and steer the session")


async def serve_during(
    live: Any,
    run: Awaitable[T],
    *,
    bind: str = "127.0.0.1",
    port: int | None = None,
    announce: Callable[[str], None] = lambda _: None,
) -> T:
    """Serve the console for ``live`` while awaiting ``run`` (the session with its terminal
    view); ``port=None``: the default port, or any free one when it is taken.

    Without aiohttp the session runs without its console (and says so): a missing web server
    must never stop a session."""
    try:
        from exposure_ctrl.console.server import DEFAULT_PORT, ConsoleServer
    except ImportError as e:
        announce(f"console not available ({e}); the session runs without it: {INSTALL_HINT}")
        return await run
    console = ConsoleServer(
        store_path=getattr(live, "store_path", None),
        bind=bind,
        port=DEFAULT_PORT if port is None else port,
        any_free_port=port is None,
        allow_start=False,
    )
    try:
        await console.start()
    except BaseException:
        if asyncio.iscoroutine(run):
            run.close()  # the session never started: no "never awaited" warning
        raise
    try:
        console.attach(live)
        _announce(console, announce)
        return await run
    finally:
        await console.close()


async def serve_forever(
    *,
    store_path: Path | None,
    bind: str = "127.0.0.1",
    port: int = 8765,
    announce: Callable[[str], None] = lambda _: None,
    stop: asyncio.Event | None = None,
) -> None:
    """Serve the console until SIGINT/SIGTERM (or ``stop`` is set)."""
    try:
        from exposure_ctrl.console.server import ConsoleServer
    except ImportError as e:
        from exposure_ctrl.errors import ConfigError

        raise ConfigError(f"the console needs aiohttp ({e}): {INSTALL_HINT}") from None

    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    installed = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)
            installed.append(sig)
    try:
        async with ConsoleServer(store_path=store_path, bind=bind, port=port) as console:
            _announce(console, announce)
            announce("stop with Ctrl-C")
            await stop.wait()
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
