"""unity_bridge.emulator: the reference headset's own behaviour (rules 1, 4, 6, 7 from its side)."""

from __future__ import annotations

import asyncio

import pytest
from bridge_helpers import CLOSER, PARAMS, SAFE, START, FakeController, make_endpoint

from unity_bridge import (
    BridgeClosed,
    BridgeStateError,
    Bye,
    EmulatorStatus,
    HeadsetEmulator,
    MalformedMessage,
    NotAdmitted,
    run_emulator,
)
from unity_bridge.messages import Ack, Heartbeat, Hello, Scene, Welcome


def _welcome(**kw):
    args = dict(session="FAKE", scenario="spider", state=START, safe_state=SAFE, heartbeat_s=0.05, timeout_s=5.0)
    args.update(kw)
    return args


def test_hello_comes_first_with_the_parameters(run) -> None:
    async def body() -> None:
        async with FakeController() as fc:
            async with HeadsetEmulator(fc.address, parameters=PARAMS, client="quest3") as emu:
                ident, first = await fc.recv()
                assert isinstance(first, Hello) and first.seq == 1
                assert first.client == "quest3" and first.parameters == PARAMS
                assert emu.status is EmulatorStatus.CONNECTING and emu.state is None
                await fc.send(ident, Welcome, **_welcome())
                await emu.wait_welcomed(5)
                assert emu.state == START and emu.safe_state == SAFE and emu.session == "FAKE"
                assert (emu.heartbeat_s, emu.timeout_s) == (0.05, 5.0)  # adopted from welcome
                _, hb = await fc.recv_until(Heartbeat, 5)
                assert hb.seq >= 2

    run(body())


def test_scene_acks_a_resend_joining_the_running_transition_and_an_unchanged_scene_at_once(run) -> None:
    async def body() -> None:
        async with FakeController() as fc:
            async with HeadsetEmulator(fc.address, parameters=PARAMS) as emu:
                ident, _ = await fc.recv_until(Hello)
                await fc.send(ident, Welcome, **_welcome(heartbeat_s=1.0))
                await emu.wait_welcomed(5)
                s1 = await fc.send(ident, Scene, state=CLOSER, transition_s=0.3)
                s2 = await fc.send(ident, Scene, state=CLOSER, transition_s=0.3)  # a re-send
                _, a1 = await fc.recv_until(Ack, 5)
                _, a2 = await fc.recv_until(Ack, 5)
                assert {a1.ack, a2.ack} == {s1, s2}
                assert emu.state == CLOSER
                scene_applied = [a for a in emu.applied if a.source == "scene"]
                assert len(scene_applied) == 1  # shown once
                s3 = await fc.send(ident, Scene, state=CLOSER, transition_s=2.0)  # already shown
                _, a3 = await fc.recv_until(Ack, 1.0)
                assert a3.ack == s3

    run(body())


def test_after_a_controller_restart_hello_first_brings_a_new_hello(run) -> None:
    async def body() -> None:
        fc = FakeController()
        address = fc.address
        try:
            async with HeadsetEmulator(address, parameters=PARAMS) as emu:
                ident, _ = await fc.recv_until(Hello)
                await fc.send(ident, Welcome, **_welcome())
                await emu.wait_welcomed(5)
                fc.close()  # the controller dies without a word
                async with make_endpoint(bind=address) as ep:  # and comes back on the same port
                    await emu.wait_until(lambda e: e.session == "S-TEST" and e.active, 10)
                    assert ep.counters.hello_first >= 1
                    assert emu.counters.errors_received >= 1
                    assert emu.counters.reconnects == 0  # the same connection, re-established
                    assert emu.state == START
        finally:
            fc.close()

    run(body())


def test_without_a_controller_it_keeps_reconnecting_until_one_answers(run) -> None:
    async def body() -> None:
        async with make_endpoint() as probe:
            address = probe.address  # a port that was free a moment ago
        async with HeadsetEmulator(address, parameters=PARAMS, heartbeat_s=0.05, timeout_s=0.2) as emu:
            await emu.wait_until(lambda e: e.counters.reconnects >= 2, 5)
            assert emu.status is EmulatorStatus.CONNECTING and emu.state is None
            async with make_endpoint(bind=address) as ep:
                await emu.wait_welcomed(5)
                assert ep.connected and emu.state == START

    run(body())


def test_refusal_stops_the_emulator_and_run_emulator_raises(run) -> None:
    async def body() -> None:
        async with make_endpoint() as ep:
            async with HeadsetEmulator(ep.address, parameters=("jar",)) as emu:
                await emu.wait_until(lambda e: e.status is EmulatorStatus.REFUSED, 5)
                assert emu.refusal is not None and emu.refusal.code == "unsupported_parameters"
            with pytest.raises(NotAdmitted, match="missing parameters: distance_m, size"):
                await run_emulator(ep.address, parameters=("jar",))

    run(body())


def test_run_emulator_reports_and_says_bye_when_stopped(run) -> None:
    async def body() -> None:
        snaps = []
        stop = asyncio.Event()
        async with make_endpoint() as ep:
            task = asyncio.create_task(
                run_emulator(ep.address, parameters=PARAMS, client="cli", on_update=snaps.append, update_s=0.02, stop=stop)
            )
            await ep.wait_connected(5)
            await ep.send_scene(CLOSER)
            for _ in range(250):
                if snaps and snaps[-1].state == CLOSER:
                    break
                await asyncio.sleep(0.02)
            stop.set()
            final = await task
            assert final.state == CLOSER and final.session == "S-TEST" and final.status == "active"
            assert snaps[0].status in ("connecting", "active")
            while True:
                ev = await ep.next_event(5)
                if isinstance(ev, Bye):
                    break
            assert ev.client == "cli" and ev.reason == "operator quit"

    run(body())


def test_emulator_lifecycle_and_event_validation(run) -> None:
    async def body() -> None:
        emu = HeadsetEmulator("tcp://127.0.0.1:9", parameters=PARAMS)
        with pytest.raises(BridgeStateError, match="start the emulator first"):
            await emu.send_event("panic")
        await emu.start()
        with pytest.raises(MalformedMessage, match="int 0..100"):
            await emu.send_event("suds", 200)
        assert await emu.send_event("panic") is None  # not welcomed: nothing sent
        await emu.close()
        await emu.close()
        with pytest.raises(BridgeClosed):
            await emu.send_event("panic")

    run(body())
