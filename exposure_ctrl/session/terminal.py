"""The therapist's terminal view of a running session, and its keyboard controls.

:func:`render_snapshot` is pure: a :class:`~exposure_ctrl.session.runner.Snapshot` in, a rich
renderable out (tested without a terminal). :class:`KeyReader` turns single key presses into
:class:`~exposure_ctrl.session.commands.TherapistCommand` s when stdin is a terminal.

Keys: ``space`` pause/resume · ``u`` step up · ``d`` step down · ``h`` hold · ``s`` safe scene ·
``e`` end · ``r`` SUDS (type 0-100, Enter) · ``n`` note (type, Enter) · ``a``/``x`` accept/reject
(advisory) · ``c`` confirm a poor baseline · ``Esc`` cancels typing.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Callable
from typing import Any

from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from exposure_ctrl.scenario.model import Scenario
from exposure_ctrl.session.commands import CommandKind, TherapistCommand
from exposure_ctrl.session.runner import Snapshot

__all__ = ["render_snapshot", "hr_strip", "KeyReader", "KEY_HELP", "key_to_command"]

KEY_HELP = (
    "[b]space[/b] pause/resume  [b]u[/b] up  [b]d[/b] down  [b]h[/b] hold  [b]s[/b] safe  [b]e[/b] end  "
    "[b]r[/b] SUDS  [b]n[/b] note  [b]a[/b]/[b]x[/b] accept/reject  [b]c[/b] confirm baseline"
)

_BLOCKS = "▁▂▃▄▅▆▇█"


def hr_strip(snap: Snapshot, sc: Scenario, width: int = 60, span_s: float = 120.0) -> Text:
    """The last ``span_s`` seconds of heart rate as a coloured strip: green inside the window,
    yellow below it, red above the ceiling, orange between the window and the ceiling."""
    text = Text()
    if not snap.hr_history or snap.baseline_bpm is None:
        return Text("(heart rate appears once the baseline is measured)", style="dim")
    base = snap.baseline_bpm
    w = sc.targets.arousal_window_bpm
    lo, hi = base - 5.0, base + sc.targets.ceiling_bpm + 10.0
    t_end = snap.hr_history[-1][0]
    cells: list[list[float]] = [[] for _ in range(width)]
    for t, bpm in snap.hr_history:
        if t < t_end - span_s:
            continue
        i = min(width - 1, int((t - (t_end - span_s)) / span_s * width))
        cells[i].append(bpm)
    for vals in cells:
        if not vals:
            text.append(" ")
            continue
        bpm = sum(vals) / len(vals)
        above = bpm - base
        level = int((min(max(bpm, lo), hi) - lo) / (hi - lo) * (len(_BLOCKS) - 1))
        if above > sc.targets.ceiling_bpm:
            style = "bold red"
        elif above > w.high:
            style = "dark_orange"
        elif above >= w.low:
            style = "green"
        else:
            style = "yellow"
        text.append(_BLOCKS[level], style=style)
    return text


def _fmt(x: float | None, unit: str, signed: bool = False) -> str:
    if x is None:
        return "—"
    return f"{x:+.1f} {unit}" if signed else f"{x:.1f} {unit}"


def render_snapshot(snap: Snapshot, sc: Scenario, *, patient: str = "", typing: str = "") -> Any:
    """The whole screen for one snapshot."""
    elapsed = snap.t - snap.phase_started_t
    head = Text()
    head.append(f" {sc.title} ", style="bold reverse")
    head.append(f"  patient {patient}  " if patient else "  ")
    head.append(f"phase {snap.phase.upper()} {elapsed:5.0f} s", style="bold")
    head.append(f"   mode {snap.mode}")
    if snap.paused:
        head.append("   POLICY PAUSED", style="bold yellow")

    w = sc.targets.arousal_window_bpm
    hr = Table.grid(padding=(0, 2))
    hr.add_row(
        "heart rate", _fmt(snap.hr_bpm, "bpm"),
        "above baseline", _fmt(snap.hr_above_bpm, "bpm", signed=True),
        "window", f"{w.low:g}–{w.high:g} (ceiling {sc.targets.ceiling_bpm:g})",
    )
    hr.add_row(
        "baseline", _fmt(snap.baseline_bpm, "bpm"),
        "RMSSD", _fmt(snap.rmssd_ms, "ms"),
        "SUDS", "—" if snap.suds is None else str(snap.suds),
    )
    scene = Table(show_header=True, header_style="bold", box=None, padding=(0, 1))
    scene.add_column("parameter")
    scene.add_column("commanded")
    scene.add_column("shown")
    for p in sc.parameters:
        cmd = snap.state.get(p.id)
        shown = snap.shown_state.get(p.id)
        scene.add_row(
            p.id,
            "—" if cmd is None else p.label(p.index_of(cmd)),
            "—" if shown is None else p.label(p.index_of(shown)),
        )
    step = snap.hierarchy_index
    step_name = sc.hierarchy[step].name if 0 <= step < len(sc.hierarchy) else "below the first step"
    status = Table.grid(padding=(0, 2))
    status.add_row("intensity", f"{snap.intensity:.2f}", "hierarchy", f"{step + 1}/{len(sc.hierarchy)}: {step_name}")
    status.add_row("policy", snap.last_policy_action or "—", "because", snap.last_policy_reason or "—")
    if snap.pending_proposal:
        status.add_row("PROPOSAL", snap.pending_proposal, "", "[b]a[/b] accept · [b]x[/b] reject")
    status.add_row("shield", snap.last_shield or "—", "last intervention", snap.last_intervention or "—")
    status.add_row("strap", snap.sensor_status, "headset", snap.headset_status)

    parts: list[Any] = [head, hr, hr_strip(snap, sc), scene, status]
    for alarm in snap.alarms:
        parts.append(Text(f"⚠ {alarm}", style="bold white on red"))
    if snap.sensitivities:
        parts.append(Text("this patient: " + "; ".join(snap.sensitivities[:4]), style="cyan"))
    if snap.messages:
        parts.append(Text("\n".join(list(snap.messages)[-4:]), style="dim"))
    if snap.outcome:
        parts.append(Text(f"session ended: {snap.outcome} ({snap.end_reason})", style="bold"))
    parts.append(Text.from_markup(typing or KEY_HELP))
    return Panel(Group(*parts), title="exposure-ctrl", border_style="blue")


def key_to_command(key: str) -> TherapistCommand | None:
    """The command of a single key (None for keys that start typing or mean nothing)."""
    table = {
        "u": CommandKind.STEP_UP,
        "d": CommandKind.STEP_DOWN,
        "h": CommandKind.HOLD,
        "s": CommandKind.SAFE,
        "e": CommandKind.END,
        "a": CommandKind.ACCEPT,
        "x": CommandKind.REJECT,
        "c": CommandKind.CONFIRM_BASELINE,
    }
    kind = table.get(key)
    return None if kind is None else TherapistCommand(kind, who="therapist (terminal)")


class KeyReader:
    """Reads single keys from a terminal in a thread and hands commands to ``submit``.

    ``paused()`` tells it whether space means pause or resume. Typing states (SUDS, note) are
    shown through ``typing`` (a line for the view).
    """

    def __init__(self, submit: Callable[[TherapistCommand], None], paused: Callable[[], bool]) -> None:
        self._submit = submit
        self._paused = paused
        self.typing = ""
        self._mode: str | None = None
        self._buf = ""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._old: Any = None

    @staticmethod
    def available() -> bool:
        return sys.stdin.isatty() and os.name == "posix"

    def start(self) -> None:
        import termios
        import tty

        fd = sys.stdin.fileno()
        self._old = termios.tcgetattr(fd)
        tty.setcbreak(fd)
        self._thread = threading.Thread(target=self._run, name="keys", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._old is not None:
            import termios

            with contextlib.suppress(Exception):
                termios.tcsetattr(sys.stdin.fileno(), termios.TCSADRAIN, self._old)
            self._old = None

    def feed(self, ch: str) -> None:
        """Handle one key (public for tests)."""
        if self._mode is not None:
            if ch in ("\r", "\n"):
                mode, buf = self._mode, self._buf.strip()
                self._mode, self._buf, self.typing = None, "", ""
                try:
                    if mode == "suds":
                        self._submit(TherapistCommand(CommandKind.SUDS, who="therapist (terminal)", value=int(buf)))
                    elif buf:
                        self._submit(TherapistCommand(CommandKind.NOTE, who="therapist (terminal)", text=buf))
                except (ValueError, Exception) as e:  # a typo must never stop the session
                    self.typing = f"[red]{e}[/red]"
                return
            if ch == "\x1b":
                self._mode, self._buf, self.typing = None, "", ""
                return
            if ch in ("\x7f", "\b"):
                self._buf = self._buf[:-1]
            elif self._mode == "note" or ch.isdigit():
                self._buf += ch
            label = "SUDS 0-100" if self._mode == "suds" else "note"
            self.typing = f"[b]{label}:[/b] {self._buf}▏ (Enter to save, Esc to cancel)"
            return
        if ch == " ":
            kind = CommandKind.RESUME if self._paused() else CommandKind.PAUSE
            self._submit(TherapistCommand(kind, who="therapist (terminal)"))
        elif ch == "r":
            self._mode, self._buf = "suds", ""
            self.typing = "[b]SUDS 0-100:[/b] ▏ (Enter to save, Esc to cancel)"
        elif ch == "n":
            self._mode, self._buf = "note", ""
            self.typing = "[b]note:[/b] ▏ (Enter to save, Esc to cancel)"
        else:
            cmd = key_to_command(ch)
            if cmd is not None:
                self._submit(cmd)

    def _run(self) -> None:
        import select

        fd = sys.stdin.fileno()
        while not self._stop.is_set():
            ready, _, _ = select.select([fd], [], [], 0.2)
            if ready:
                ch = os.read(fd, 1).decode(errors="ignore")
                if ch:
                    self.feed(ch)


async def run_with_view(live: Any, view: str = "auto") -> Any:
    """Run a :class:`~exposure_ctrl.session.live.LiveSession` with a terminal view.

    ``view``: ``live`` (a refreshing screen with keyboard controls), ``plain`` (one line per
    event, for logs and pipes), ``none``; ``auto`` picks ``live`` on a terminal, else ``plain``.
    """
    import asyncio

    from rich.console import Console
    from rich.live import Live

    console = Console(stderr=False)
    if view == "auto":
        view = "live" if console.is_terminal and KeyReader.available() else "plain"
    stop = asyncio.Event()
    reader: KeyReader | None = None
    tasks: list[asyncio.Task[Any]] = []

    async def on_start(session: Any) -> None:
        runner = session.runner
        loop = asyncio.get_running_loop()

        def submit(cmd: TherapistCommand) -> None:
            loop.call_soon_threadsafe(runner.commands.put_nowait, cmd)

        async def show_live() -> None:
            nonlocal reader
            if KeyReader.available():
                reader = KeyReader(submit, lambda: runner.snapshot.paused)
                reader.start()
            with Live(console=console, refresh_per_second=4, transient=False) as lv:
                while not stop.is_set():
                    typing = reader.typing if reader is not None else ""
                    lv.update(render_snapshot(runner.snapshot, session.scenario, patient=session.patient, typing=typing))
                    await asyncio.sleep(0.25)
                lv.update(render_snapshot(runner.snapshot, session.scenario, patient=session.patient))

        async def show_plain() -> None:
            seen = 0
            while True:
                snap = runner.snapshot
                new = snap.n_messages - seen
                if new > 0:
                    for m in list(snap.messages)[-min(new, len(snap.messages)) :]:
                        console.print(f"[{snap.phase:>8} {max(0.0, snap.t - snap.phase_started_t):5.0f} s] {m}", highlight=False, markup=False)
                    seen = snap.n_messages
                if stop.is_set():
                    break
                await asyncio.sleep(0.2)

        if view == "live":
            tasks.append(asyncio.create_task(show_live()))
        elif view == "plain":
            tasks.append(asyncio.create_task(show_plain()))

    try:
        return await live.run(on_start=on_start)
    finally:
        stop.set()
        for t in tasks:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(t, 2.0)
        if reader is not None:
            reader.stop()
