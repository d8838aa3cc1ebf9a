"""The therapist's web console: run a session live and review past ones, from a browser.

- :class:`~exposure_ctrl.console.server.ConsoleServer`: the aiohttp server, inside the session's
  asyncio loop; ``exposure-ctrl run`` serves it during a session, ``exposure-ctrl console`` for
  setup (start a session from the browser) and review.
- :mod:`~exposure_ctrl.console.access`: the access token, the Host allow-list, the same-origin
  rule for commands (pure).
- :mod:`~exposure_ctrl.console.state`: the live view's JSON, a pure function of the runner's
  snapshot.
- :mod:`~exposure_ctrl.console.pages`: the HTML pages (pure); ``static/``: the pages' own
  script and style, served by the controller (no network needed).
- :func:`~exposure_ctrl.console.serve.serve_during`: the console alongside a session run from the
  command line.

See docs/console.md.
"""

from typing import Any

from exposure_ctrl.console.access import AccessPolicy, new_token

__all__ = ["ConsoleServer", "AccessPolicy", "new_token", "DEFAULT_PORT"]


def __getattr__(name: str) -> Any:
    # The server needs aiohttp; importing the package (e.g. for `exposure-ctrl run`) does not.
    if name in ("ConsoleServer", "DEFAULT_PORT"):
        from exposure_ctrl.console import server

        return getattr(server, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
