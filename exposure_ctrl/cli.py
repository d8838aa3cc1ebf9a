"""The ``exposure-ctrl`` command line: parse, call, print. Nothing else lives here.

A mistake by the user (a bad option, an invalid scenario, a policy that does not fit) prints one
clear paragraph on stderr and exits with status 2, never a traceback. Other expected failures
(a strap that vanished, a store that cannot be written) exit with status 1.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from exposure_ctrl import __version__
from exposure_ctrl.errors import ConfigError, ExposureCtrlError

__all__ = ["cli", "main"]


class _Group(click.Group):
    """A click group that turns our errors into a message and an exit status."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ConfigError as e:
            click.echo(str(e), err=True)
            ctx.exit(2)
        except ExposureCtrlError as e:
            click.echo(f"error: {e}", err=True)
            ctx.exit(1)


def _console() -> Console:
    return Console(highlight=False, soft_wrap=False)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", "-V", prog_name="exposure-ctrl")
def cli() -> None:
    """Adaptive controller for virtual-reality exposure therapy.

    Therapists: `exposure-ctrl run`. Scenario designers: `exposure-ctrl scenario validate`.
    Researchers: `exposure-ctrl train` / `evaluate`, or gymnasium.make("exposure_ctrl/Exposure-v0").
    """


# --- scenario ----------------------------------------------------------------------------------


@cli.group(cls=_Group)
def scenario() -> None:
    """Check, show and describe scenario files."""


@scenario.command("validate")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
def scenario_validate(files: tuple[Path, ...]) -> None:
    """Check scenario FILES; print every problem of every file (exit 0 if all are valid, else 2)."""
    from exposure_ctrl.errors import ScenarioError
    from exposure_ctrl.scenario import load_scenario

    failed = 0
    for f in files:
        try:
            sc = load_scenario(f)
        except ScenarioError as e:
            failed += 1
            click.echo(str(e), err=True)
            continue
        click.echo(
            f"ok  {f}: {sc.id!r}, {sc.n_parameters} parameters, {len(sc.hierarchy)} hierarchy "
            f"steps, {sc.n_actions} actions"
        )
    if failed:
        click.echo(f"{failed} of {len(files)} file(s) invalid", err=True)
        sys.exit(2)


@scenario.command("show")
@click.argument("ref")
def scenario_show(ref: str) -> None:
    """Show the parameters, hierarchy and targets of a scenario (id or file) as tables."""
    from exposure_ctrl.scenario import resolve_scenario
    from exposure_ctrl.scenario.show import hierarchy_table, parameter_table, targets_table

    sc = resolve_scenario(ref)
    con = _console()
    con.print(f"[bold]{sc.title}[/bold] ({sc.id}, v{sc.version}) — {sc.indication}")
    con.print(sc.description.strip())
    for table in (parameter_table(sc), hierarchy_table(sc), targets_table(sc)):
        con.print(table)


@scenario.command("schema")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Write to this file.")
def scenario_schema(out: Path | None) -> None:
    """Print the JSON Schema of the scenario format (for editors)."""
    from exposure_ctrl.scenario import scenario_json_schema

    text = json.dumps(scenario_json_schema(), indent=2, ensure_ascii=False) + "\n"
    if out is None:
        click.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
        click.echo(f"wrote {out}", err=True)


@scenario.command("list")
def scenario_list() -> None:
    """List the scenarios found by id (shipped and on $EXPOSURE_CTRL_SCENARIO_PATH)."""
    from exposure_ctrl.scenario import shipped_scenarios

    for sid, path in shipped_scenarios().items():
        click.echo(f"{sid}\t{path}")


# --- commands of the other rooms are added below, one section each ---------------------------
# (sensors: devices, hr) (bridge: keys, headset) (policy: train, evaluate) (session: run,
# sessions, review, progress, export) (console: console)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``exposure-ctrl`` script; returns the exit status."""
    try:
        cli.main(args=argv, prog_name="exposure-ctrl", standalone_mode=True)
    except SystemExit as e:
        code = e.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    return 0
