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


# --- policy: train, evaluate ---------------------------------------------------------------------


@cli.command("train")
@click.option("--scenario", "scenario_ref", default="spider", show_default=True, help="Scenario id or YAML file.")
@click.option("--cohort", default=None, help="Training cohort (default: the scenario's own; its train split).")
@click.option("--timesteps", type=click.IntRange(min=1), default=1_500_000, show_default=True,
              help="Decisions (5-s periods) to train on.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Policy directory to write [default: runs/<scenario>-seed<seed>].")
@click.option("--tensorboard", "tb_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Also write TensorBoard logs here (needs the tensorboard package).")
@click.option("--n-envs", type=click.IntRange(min=1), default=32, show_default=True, help="Sessions simulated in lockstep.")
@click.option("--checkpoint-every", type=click.IntRange(min=0), default=500_000, show_default=True,
              help="Save a checkpoint every this many decisions (0: never).")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override any training setting (exposure_ctrl.policy.train.TrainConfig), e.g. reward_ceiling=200.")
def train_cmd(scenario_ref: str, cohort: str | None, timesteps: int, seed: int, out_dir: Path | None,
              tb_dir: Path | None, n_envs: int, checkpoint_every: int, no_progress: bool,
              overrides: tuple[str, ...]) -> None:
    """Train a MaskablePPO policy on simulated patients (shield inside, as live).

    Writes a policy directory (model.zip, policy.json, training.json, checkpoints/) that
    `exposure-ctrl run --policy DIR` and `exposure-ctrl evaluate --policies DIR` accept.
    """
    from exposure_ctrl.scenario import resolve_scenario

    sc = resolve_scenario(scenario_ref)
    from exposure_ctrl.policy.train import TrainConfig, parse_overrides, train

    out = out_dir or Path("runs") / f"{sc.id}-seed{seed}"
    settings = {"cohort": cohort, "timesteps": timesteps, "seed": seed, "n_envs": n_envs,
                "checkpoint_every": checkpoint_every or None, **parse_overrides(overrides)}
    cfg = TrainConfig(scenario=sc.id, **settings)
    command = "exposure-ctrl " + " ".join(sys.argv[1:]) if sys.argv else None
    res = train(cfg, out, scenario=sc, tensorboard=tb_dir, progress_bar=not no_progress, command=command)
    last = res.curve[-1] if res.curve else {}
    click.echo(f"trained {res.timesteps:,} decisions in {res.wall_s / 60:.1f} min -> {res.out_dir}")
    if last:
        click.echo(f"last training sessions: time in window {last['time_in_window_pct']:.1f}%, "
                   f"highest step {last['highest_step']:.1f}, aborts {last['abort_pct']:.1f}%")
    click.echo(f"evaluate: exposure-ctrl evaluate --scenario {scenario_ref} --policies band-pi,{res.out_dir},oracle")


@cli.command("evaluate")
@click.option("--scenario", "scenario_ref", default="spider", show_default=True, help="Scenario id or YAML file.")
@click.option("--cohort", default=None, help="Cohort whose held-out patients are used (default: the scenario's own).")
@click.option("--policies", default=None,
              help="Comma-separated policy names or directories [default: every baseline, the shipped policy, the oracle].")
@click.option("--patients", type=click.IntRange(min=2, max=1000), default=100, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--course-sessions", type=click.IntRange(min=1, max=20), default=4, show_default=True,
              help="Sessions per patient for 'sessions to reach the top'.")
@click.option("--sensor", default="strap", show_default=True, help="strap | strap-flaky | ideal | wrist")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where to write evaluation.md/.json/.png [default: evaluations/<scenario>].")
def evaluate_cmd(scenario_ref: str, cohort: str | None, policies: str | None, patients: int, seed: int,
                 course_sessions: int, sensor: str, out_dir: Path | None) -> None:
    """Run policies on the same held-out simulated patients and compare them (95% CIs)."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from exposure_ctrl.policy import shipped_policy_dir
    from exposure_ctrl.policy.evaluate import evaluate, render_markdown, write_evaluation
    from exposure_ctrl.policy.registry import rule_names
    from exposure_ctrl.scenario import resolve_scenario

    sc = resolve_scenario(scenario_ref)
    if policies:
        names = [p.strip() for p in policies.split(",") if p.strip()]
    else:
        names = rule_names()
        names += (["ppo"] if shipped_policy_dir(sc.id) else []) + ["oracle"]
    with Progress(TextColumn("{task.description}"), BarColumn(), TimeRemainingColumn(),
                  console=Console(stderr=True), transient=True) as bar:
        tasks: dict[str, Any] = {}

        def progress(name: str, i: int, total: int) -> None:
            if name not in tasks:
                tasks[name] = bar.add_task(f"{name:>16}", total=total)
            bar.update(tasks[name], completed=i)

        ev = evaluate(sc, names, cohort=cohort, patients=patients, seed=seed, course_sessions=course_sessions,
                      sensor=sensor, on_progress=progress)
    click.echo(render_markdown(ev))
    paths = write_evaluation(ev, out_dir or Path("evaluations") / sc.id)
    click.echo("wrote " + ", ".join(str(p) for p in paths.values()))


# --- console: the therapist's web console (setup, live view, review) ---------------------------


@cli.command("console")
@click.option("--bind", default="127.0.0.1", show_default=True,
              help="Address to listen on. Beyond loopback (e.g. 0.0.0.0) a tablet on the network can "
              "open the printed URL, whose token is required.")
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True,
              help="Port to listen on (0: any free port).")
@click.option("--store", "store_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Session store to review and to record new sessions in [default: your data folder].")
def console_cmd(bind: str, port: int, store_path: Path | None) -> None:
    """Serve the therapist console in a browser: start sessions, run them live, review them.

    Prints the URL to open (it carries a random access token). Stop with Ctrl-C; a session
    started from the console is ended and recorded first. No internet is needed.
    """
    import asyncio

    from exposure_ctrl.console.serve import serve_forever

    asyncio.run(serve_forever(store_path=store_path, bind=bind, port=port, announce=click.echo))


# --- bridge: keys generate, headset emulate ----------------------------------------------------


def _default_keys_dir() -> Path:
    import os

    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "exposure-ctrl" / "keys"


@cli.group("keys", cls=_Group)
def keys_group() -> None:
    """CurveZMQ keys for the controller and its headsets."""


@keys_group.command("generate")
@click.option(
    "--dir", "directory", type=click.Path(file_okay=False, path_type=Path), default=None,
    help="Where to write the keys [default: $XDG_CONFIG_HOME/exposure-ctrl/keys].",
)
@click.option("--force", is_flag=True, help="Replace existing keys (headsets then need the new controller.key).")
def keys_generate(directory: Path | None, force: bool) -> None:
    """Create a controller and a headset CURVE key pair and the headset allow-list."""
    from unity_bridge import generate_keys
    from unity_bridge.errors import BridgeConfigError

    try:
        ks = generate_keys(directory or _default_keys_dir(), force=force)
    except BridgeConfigError as e:
        raise ConfigError(str(e)) from e
    click.echo(f"CURVE keys written to {ks.directory} (directory mode 0700)")
    click.echo(f"  controller secret  {ks.controller_secret}   stays on the controller")
    click.echo(f"  controller public  {ks.controller_public}   copy to every headset")
    click.echo(f"  headset secret     {ks.headset_secret}   copy to the headset only")
    click.echo(f"  allow-list         {ks.allow_dir}/   the controller admits the *.key files here")
    click.echo("Headset: exposure-ctrl headset emulate --connect tcp://HOST:5556 "
               f"--key {ks.headset_secret} ... (or the Unity package's CURVE fields)")


@cli.group("headset", cls=_Group)
def headset_group() -> None:
    """The headset side of the bridge (the reference emulator)."""


def _render_headset(snap: Any, parameters: tuple[str, ...]) -> Any:
    """A rich table of what the emulated headset shows now (pure: snapshot in, table out)."""
    from rich.table import Table

    title = f"headset {snap.client!r}: {snap.status}"
    if snap.session:
        title += f"  (session {snap.session}, scenario {snap.scenario})"
    table = Table(title=title, title_justify="left")
    table.add_column("parameter")
    table.add_column("shown")
    table.add_column("fading to")
    target, left = snap.transition if snap.transition else ({}, 0.0)
    for p in parameters:
        shown = "—" if snap.state is None else str(snap.state.get(p, "—"))
        to = str(target[p]) if p in target and (snap.state is None or target[p] != snap.state.get(p)) else ""
        table.add_row(p, f"[bold]{shown}[/bold]", f"{to} ({left:.1f} s)" if to else "")
    last = snap.last_applied
    notes = []
    if snap.showing_safe:
        notes.append("[yellow]SAFE STATE[/yellow]")
    if last is not None:
        notes.append(f"last change: {last.source}" + (f" ({last.reason})" if last.reason else ""))
    if snap.end_reason:
        notes.append(f"ended: {snap.end_reason}")
    if snap.last_error:
        notes.append(f"controller error: {snap.last_error}")
    c = snap.counters
    notes.append(f"acks {c['acks_sent']}  heartbeats {c['heartbeats_sent']}  reconnects {c['reconnects']}  malformed {c['malformed']}")
    table.caption = "   ".join(notes)
    table.caption_justify = "left"
    return table


@headset_group.command("emulate")
@click.option("--connect", default="tcp://127.0.0.1:5556", show_default=True, help="The controller's address.")
@click.option("--scenario", "scenario_ref", help="Scenario id or YAML file whose parameters to render.")
@click.option("--parameters", help="Comma-separated parameter ids to render (instead of --scenario).")
@click.option("--client", default="emulator", show_default=True, help="Name sent in hello.")
@click.option("--key", "key_file", type=click.Path(dir_okay=False, path_type=Path),
              help="This headset's headset.key_secret (enables CURVE).")
@click.option("--server-key", "server_key_file", type=click.Path(dir_okay=False, path_type=Path),
              help="The controller's public controller.key [default: beside --key].")
@click.option("--duration", type=float, default=None, help="Stop (with bye) after this many seconds.")
def headset_emulate(
    connect: str, scenario_ref: str | None, parameters: str | None, client: str,
    key_file: Path | None, server_key_file: Path | None, duration: float | None,
) -> None:
    """Run the reference headset and show the scene it is told to show, live.

    It does what a correct headset does (PROTOCOL.md): hello, welcome, scene transitions and
    acks, heartbeats, the safe state by itself when the controller goes silent, reconnects.
    Stop with Ctrl-C (it says bye).
    """
    import asyncio
    import signal

    from rich.live import Live

    from exposure_ctrl.errors import HeadsetError
    from unity_bridge import CurveClient, NotAdmitted, run_emulator
    from unity_bridge.errors import BridgeConfigError

    if (scenario_ref is None) == (parameters is None):
        raise ConfigError("give exactly one of --scenario ID|FILE or --parameters a,b,c")
    if scenario_ref is not None:
        from exposure_ctrl.scenario import resolve_scenario

        params = tuple(p.id for p in resolve_scenario(scenario_ref).parameters)
    else:
        params = tuple(p.strip() for p in (parameters or "").split(",") if p.strip())
        if not params:
            raise ConfigError("--parameters needs at least one parameter id, e.g. --parameters jar,size")
    try:
        curve = None
        if key_file is not None:
            curve = CurveClient.from_files(key_file, server_key_file or key_file.parent / "controller.key")
        elif server_key_file is not None:
            raise ConfigError("--server-key needs --key (this headset's headset.key_secret)")
    except BridgeConfigError as e:
        raise ConfigError(str(e)) from e

    con = _console()

    async def main() -> Any:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGINT, stop.set)
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        if duration is not None:
            loop.call_later(duration, stop.set)
        with Live(console=con, auto_refresh=False, transient=not con.is_terminal) as live:
            def show(snap: Any) -> None:
                live.update(_render_headset(snap, params), refresh=True)

            try:
                return await run_emulator(connect, parameters=params, client=client, curve=curve, on_update=show, stop=stop)
            except BridgeConfigError as e:
                raise ConfigError(str(e)) from e
            except NotAdmitted as e:
                raise HeadsetError(str(e)) from e

    final = asyncio.run(main())
    if not con.is_terminal:
        con.print(_render_headset(final, params))

# --- session: run ------------------------------------------------------------------------------


@cli.command("run")
@click.option("--scenario", default="spider", show_default=True, help="Scenario id or YAML file.")
@click.option("--patient", default="DEMO-001", show_default=True, help="Pseudonymous patient code (never a name).")
@click.option("--policy", default=None, help="Policy id or path (default: the shipped one for the scenario).")
@click.option("--mode", type=click.Choice(["autonomous", "advisory", "manual"]), default="autonomous", show_default=True)
@click.option("--sensor", default="sim", show_default=True, help="sim | virtual-ble | ble | replay:FILE")
@click.option("--device", default=None, help="With --sensor ble: the strap's address or name.")
@click.option("--headset", type=click.Choice(["emulator", "listen"]), default="emulator", show_default=True,
              help="emulator: the built-in reference headset over loopback; listen: wait for Unity or any PROTOCOL.md client.")
@click.option("--bind", default=None, help="With --headset listen: tcp://HOST:PORT to bind (default tcp://127.0.0.1:5556).")
@click.option("--keys", "curve_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="CURVE key folder (from `exposure-ctrl keys generate`); required beyond loopback.")
@click.option("--insecure", is_flag=True, help="Allow plaintext beyond loopback (not recommended).")
@click.option("--speed", type=float, default=None, help="Clock speed (only with sim or replay; sim default 60).")
@click.option("--seed", type=int, default=None, help="Seed of the simulated patient.")
@click.option("--cohort", default=None, help="Simulated patient cohort (sim only).")
@click.option("--sim-strap", type=click.Choice(["strap", "strap-flaky", "ideal", "wrist"]), default="strap",
              show_default=True, help="With --sensor sim: the simulated sensor.")
@click.option("--duration-s", type=float, default=None, help="Cap on the exposure phase, seconds.")
@click.option("--baseline-s", type=float, default=None, help="Override the scenario's baseline duration.")
@click.option("--store", "store_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Session store file (default: your data folder).")
@click.option("--no-report", is_flag=True, help="Do not write the review report at the end.")
@click.option("--report-out", type=click.Path(dir_okay=False, path_type=Path), default=None)
@click.option("--accept-poor-baseline", is_flag=True, help="Start exposure even on a baseline of poor quality.")
@click.option("--view", type=click.Choice(["auto", "live", "plain", "none"]), default="auto", show_default=True)
@click.option("--no-console", is_flag=True, help="Do not serve the therapist web console during the session.")
@click.option("--console-bind", default="127.0.0.1", show_default=True,
              help="Console address; beyond loopback a tablet can open the printed URL (token required).")
@click.option("--console-port", type=click.IntRange(0, 65535), default=None,
              help="Console port [default: 8765, or any free port when it is taken].")
def run_cmd(
    scenario: str, patient: str, policy: str | None, mode: str, sensor: str, device: str | None,
    headset: str, bind: str | None, curve_dir: Path | None, insecure: bool, speed: float | None,
    seed: int | None, cohort: str | None, sim_strap: str, duration_s: float | None, baseline_s: float | None,
    store_path: Path | None, no_report: bool, report_out: Path | None, accept_poor_baseline: bool, view: str,
    no_console: bool = False, console_bind: str = "127.0.0.1", console_port: int | None = None,
) -> None:
    """Run a session: baseline, graded exposure, recovery; stored and reported.

    With no options: a complete simulated session of the spider scenario (simulated patient,
    the reference headset over loopback, the shipped policy, a 60x clock), ending with the path
    of its review report.
    """
    import asyncio

    from exposure_ctrl.session.live import LiveSession, RunOptions
    from exposure_ctrl.session.terminal import run_with_view

    if device is not None:
        if sensor != "ble":
            raise click.UsageError("--device goes with --sensor ble")
        sensor = f"ble:{device}"
    if headset == "listen" and bind is None:
        bind = "tcp://127.0.0.1:5556"
    opts = RunOptions(
        scenario=scenario, patient=patient, policy=policy, mode=mode, sensor=sensor,
        headset=headset, bind=bind, insecure=insecure, curve_dir=curve_dir, speed=speed, seed=seed,
        cohort=cohort, sim_sensor=sim_strap, duration_s=duration_s, baseline_s=baseline_s, store=store_path,
        report=not no_report, report_out=report_out, accept_poor_baseline=accept_poor_baseline,
        interactive=view in ("auto", "live") and sys.stdin.isatty(),
    )
    live = LiveSession(opts)
    if headset == "listen":
        click.echo(f"waiting for a headset on {bind} …", err=True)
    session = run_with_view(live, view)
    if not no_console:  # the therapist web console beside the session (exposure_ctrl.console)
        from exposure_ctrl.console.serve import serve_during

        session = serve_during(live, session, bind=console_bind, port=console_port,
                               announce=lambda line: click.echo(line, err=True))
    try:
        result = asyncio.run(session)
    except KeyboardInterrupt:
        click.echo("interrupted: the session was recorded up to now", err=True)
        sys.exit(130)
    click.echo(
        f"session {result.session_id}: {result.outcome.value} ({result.reason}); "
        f"hierarchy step {result.hierarchy_index + 1}/{len(live.scenario.hierarchy)}, "
        f"{result.n_samples} samples, {result.n_scene_changes} scene changes"
    )
    click.echo(f"store: {live.store_path}")
    if live.report_path is not None:
        click.echo(f"report: {live.report_path}")


# --- store and review: sessions list, review, progress, export ---------------------------------


def _store_option(f: Any) -> Any:
    return click.option(
        "--store",
        "store_path",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="Session store file [default: $EXPOSURE_CTRL_HOME/sessions.sqlite or "
        "~/.local/share/exposure-ctrl/sessions.sqlite].",
    )(f)


def _open_store(store_path: Path | None) -> Any:
    from exposure_ctrl.store import Store

    return Store.open(store_path, create=False)


@cli.group("sessions", cls=_Group)
def sessions_group() -> None:
    """Sessions recorded in the store."""


@sessions_group.command("list")
@click.option("--patient", help="Only this patient's sessions (pseudonymous code).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array instead of a table.")
@_store_option
def sessions_list(patient: str | None, as_json: bool, store_path: Path | None) -> None:
    """List recorded sessions, oldest first."""
    from exposure_ctrl.report.text import sessions_json, sessions_table

    with _open_store(store_path) as store:
        rows = store.list_sessions(patient=patient)
    if as_json:
        click.echo(sessions_json(rows), nl=False)
    elif not rows:
        click.echo("no sessions" + (f" for patient {patient}" if patient else ""), err=True)
    else:
        _console().print(sessions_table(rows))


@cli.command("review")
@click.argument("session")
@_store_option
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Report file [default: reports/session-<id>.html next to the store].")
def review_cmd(session: str, store_path: Path | None, out: Path | None) -> None:
    """Write the self-contained HTML review report of SESSION (its number, or `latest`) and
    print its path."""
    from exposure_ctrl.report.review import write_review

    with _open_store(store_path) as store:
        path = write_review(store, store.resolve_session(session), out)
    click.echo(str(path))


@cli.command("progress")
@click.argument("patient")
@_store_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write an HTML progress report to this file.")
def progress_cmd(patient: str, store_path: Path | None, as_json: bool, out: Path | None) -> None:
    """A patient's progress across sessions: step reached, time in window, peak rise per step."""
    from exposure_ctrl.report.html import render_progress
    from exposure_ctrl.report.review import progress_rows
    from exposure_ctrl.report.text import progress_json, progress_table
    from exposure_ctrl.store import validate_patient_code, write_private_text

    validate_patient_code(patient)
    with _open_store(store_path) as store:
        rows, sc = progress_rows(store, patient)
    if not rows:
        raise ConfigError(
            f"no sessions for patient {patient!r}; `exposure-ctrl sessions list` shows who has some"
        )
    if as_json:
        click.echo(progress_json(patient, rows), nl=False)
    else:
        _console().print(progress_table(patient, rows))
    if out is not None:
        write_private_text(out, render_progress(patient, rows, sc))
        click.echo(str(out), err=True)


@cli.command("export")
@click.argument("session")
@click.option("--format", "fmt", type=click.Choice(["csv", "json"]), required=True,
              help="json: every table in one document; csv: one row per record, `record` column.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write to this file (owner-only) instead of standard output.")
@_store_option
def export_cmd(session: str, fmt: str, out: Path | None, store_path: Path | None) -> None:
    """Export everything recorded about SESSION (its number, or `latest`)."""
    from exposure_ctrl.report.export import render_csv, render_json
    from exposure_ctrl.store import write_private_text

    with _open_store(store_path) as store:
        rec = store.load_session(store.resolve_session(session))
    text = render_json(rec) if fmt == "json" else render_csv(rec)
    if out is None:
        click.echo(text, nl=False)
    else:
        write_private_text(out, text)
        click.echo(str(out), err=True)


# --- sensors: devices, hr ----------------------------------------------------------------------


def _hr_clock(speed: float) -> Any:
    from exposure_ctrl.clock import MonotonicClock, ScaledClock

    return MonotonicClock() if speed == 1.0 else ScaledClock(speed)


def _quiet_bumble() -> None:
    """The virtual strap's stack (bumble) logs link-layer chatter; the user needs none of it."""
    import logging

    logging.getLogger("bumble").setLevel(logging.ERROR)


def _hr_source(device: str | None, virtual: bool, replay: Path | None, speed: float, clock: Any) -> Any:
    from exposure_ctrl.sensors.source import open_source

    if (device is not None) + bool(virtual) + (replay is not None) > 1:
        raise click.UsageError("choose one of --device, --virtual and --replay")
    if speed != 1.0 and not (virtual or replay):
        raise click.UsageError("--speed only applies to --virtual and --replay (a real strap is real time)")
    if virtual:
        _quiet_bumble()
        return open_source("virtual-ble", clock=clock)
    if replay is not None:
        return open_source(f"replay:{replay}", clock=clock)
    return open_source(f"ble:{device}" if device else "ble", clock=clock)


def _hr_printer(t0: float) -> Any:
    """A callback that echoes one line per event, showing the last known battery level."""
    from exposure_ctrl.sensors.display import format_event
    from exposure_ctrl.sensors.source import DeviceInfo

    battery: list[int | None] = [None]

    def show(event: Any) -> None:
        if isinstance(event, DeviceInfo) and event.battery_pct is not None:
            battery[0] = event.battery_pct
        line = format_event(event, t0=t0, battery_pct=battery[0])
        if line is not None:
            click.echo(line)

    return show


def _hr_options(f: Any) -> Any:
    f = click.option(
        "--speed",
        type=click.FloatRange(min=0.01, max=1e4),
        default=1.0,
        show_default=True,
        help="Run --virtual/--replay this many times faster than real time (times stay consistent).",
    )(f)
    f = click.option(
        "--duration-s",
        type=click.FloatRange(min=0, min_open=True),
        default=None,
        help="Stop after this many seconds (of the --speed clock). Default: until Ctrl-C / end of replay.",
    )(f)
    f = click.option("--virtual", is_flag=True, help="Use the virtual strap (no Bluetooth needed).")(f)
    f = click.option(
        "--device", metavar="ADDRESS|NAME", help="Strap address or advertised name (default: first strap found)."
    )(f)
    return f


@cli.command("devices")
@click.option("--virtual", is_flag=True, help="Start a virtual strap and scan for it (no Bluetooth needed).")
@click.option("--timeout-s", type=click.FloatRange(min=0.1, max=120), default=5.0, show_default=True,
              help="How long to scan (seconds).")
@click.option("--all", "all_devices", is_flag=True, help="Also list devices that are not heart-rate straps.")
def devices_cmd(virtual: bool, timeout_s: float, all_devices: bool) -> None:
    """Scan for Bluetooth LE heart-rate straps: name, address, signal strength."""
    import asyncio

    from exposure_ctrl.sensors.ble import scan_heart_rate_straps
    from exposure_ctrl.sensors.display import format_strap_table

    async def scan() -> list[Any]:
        if not virtual:
            return await scan_heart_rate_straps(timeout_s, all_devices=all_devices)
        from exposure_ctrl.sensors.bleak_bumble import VirtualAir, bleak_kwargs
        from exposure_ctrl.sensors.virtual_strap import VirtualStrap

        _quiet_bumble()
        air = VirtualAir("devices")
        async with VirtualStrap(air=air):
            return await scan_heart_rate_straps(
                min(timeout_s, 1.0), all_devices=all_devices, scanner_kwargs=bleak_kwargs(air)["scanner"]
            )

    click.echo(format_strap_table(asyncio.run(scan())))


@cli.group("hr", cls=_Group)
def hr_group() -> None:
    """Heart-rate straps: watch one live, record its raw notifications, replay a recording."""


@hr_group.command("monitor")
@_hr_options
@click.option("--replay", type=click.Path(dir_okay=False, path_type=Path), help="Play a recording instead.")
def hr_monitor(device: str | None, virtual: bool, duration_s: float | None, speed: float,
               replay: Path | None) -> None:
    """Show live heart rate, RR intervals, contact and battery, one line per notification."""
    import asyncio

    from exposure_ctrl.sensors.display import events_for

    clock = _hr_clock(speed)
    source = _hr_source(device, virtual, replay, speed, clock)

    async def monitor() -> None:
        show = _hr_printer(clock.now())
        async with source:
            async for event in events_for(source, clock, duration_s):
                show(event)

    try:
        asyncio.run(monitor())
    except KeyboardInterrupt:
        click.echo("stopped", err=True)


@hr_group.command("record")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Recording to write (JSON lines, see docs/sensors.md); name it by patient code only.")
@_hr_options
@click.option("--quiet", "-q", is_flag=True, help="Do not print each notification.")
def hr_record(out: Path, device: str | None, virtual: bool, duration_s: float | None, speed: float,
              quiet: bool) -> None:
    """Record raw heart-rate notifications with their times, for replay (--sensor replay:FILE)."""
    import asyncio

    from exposure_ctrl.sensors.display import record_source

    clock = _hr_clock(speed)
    source = _hr_source(device, virtual, None, speed, clock)
    show = (lambda event: None) if quiet else _hr_printer(clock.now())

    packets = 0
    try:
        packets = asyncio.run(record_source(source, out, clock=clock, duration_s=duration_s, on_event=show))
    except KeyboardInterrupt:
        pass
    click.echo(f"wrote {out} ({packets} notifications)" if packets else f"wrote {out}", err=True)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``exposure-ctrl`` script; returns the exit status."""
    try:
        cli.main(args=argv, prog_name="exposure-ctrl", standalone_mode=True)
    except SystemExit as e:
        code = e.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    return 0
