"""unity_bridge.security: key files, CURVE allow-list over real sockets, the loopback rule."""

from __future__ import annotations

import asyncio
import stat
from pathlib import Path

import pytest
import zmq
import zmq.asyncio
from bridge_helpers import PARAMS, RawClient, make_endpoint

from unity_bridge import (
    CurveClient,
    CurveServer,
    HeadsetConnected,
    HeadsetEmulator,
    InsecureBindError,
    KeyFileError,
    generate_keys,
)
from unity_bridge.messages import Welcome
from unity_bridge.security import check_bind, is_loopback, load_keypair, load_public_key

pytestmark = pytest.mark.skipif(not zmq.has("curve"), reason="libzmq built without CURVE")


def test_generate_keys_writes_pairs_an_allow_list_and_private_permissions(tmp_path: Path) -> None:
    ks = generate_keys(tmp_path / "keys")
    for p in (ks.controller_public, ks.controller_secret, ks.headset_public, ks.headset_secret):
        assert p.is_file()
    assert stat.S_IMODE(ks.directory.stat().st_mode) == 0o700
    assert stat.S_IMODE(ks.controller_secret.stat().st_mode) == 0o600
    assert stat.S_IMODE(ks.headset_secret.stat().st_mode) == 0o600
    assert (ks.allow_dir / "headset.key").read_bytes() == ks.headset_public.read_bytes()
    pub, sec = load_keypair(ks.headset_secret)
    assert load_public_key(ks.headset_public) == pub and len(sec) == 40
    assert zmq.curve_public(sec) == pub
    assert load_public_key(ks.controller_public) != pub


def test_generate_keys_does_not_overwrite_without_force(tmp_path: Path) -> None:
    first = generate_keys(tmp_path)
    old = first.controller_secret.read_bytes()
    with pytest.raises(KeyFileError, match="keys already exist.*--force"):
        generate_keys(tmp_path)
    assert first.controller_secret.read_bytes() == old
    generate_keys(tmp_path, force=True)
    assert first.controller_secret.read_bytes() != old


def test_key_file_errors_say_what_is_wrong(tmp_path: Path) -> None:
    ks = generate_keys(tmp_path)
    with pytest.raises(KeyFileError, match="holds no secret-key; give the \\*.key_secret file"):
        load_keypair(ks.headset_public)
    with pytest.raises(KeyFileError, match="cannot read"):
        load_keypair(tmp_path / "nope.key_secret")
    bad = tmp_path / "bad.key"
    bad.write_text('curve\n    public-key = "tooshort"\n')
    with pytest.raises(KeyFileError, match="must be 40 Z85 characters"):
        load_public_key(bad)
    with pytest.raises(KeyFileError, match="allow-list directory .* does not exist"):
        CurveServer.from_files(ks.controller_secret, tmp_path / "missing")


def test_an_allow_listed_headset_is_admitted_over_curve(tmp_path: Path, run) -> None:
    ks = generate_keys(tmp_path)

    async def body() -> None:
        async with make_endpoint(curve=CurveServer.from_dir(tmp_path)) as ep:
            async with HeadsetEmulator(ep.address, parameters=PARAMS, curve=CurveClient.from_dir(tmp_path)) as emu:
                await emu.wait_welcomed(10)
                ev = await ep.next_event(5)
                assert isinstance(ev, HeadsetConnected)
                assert ev.key == load_public_key(ks.headset_public).decode()
                assert ep.counters.rejected_keys == 0

    run(body())


def test_an_unknown_key_is_refused_below_the_application(tmp_path: Path, run) -> None:
    generate_keys(tmp_path)
    server_public = load_public_key(tmp_path / "controller.key")
    stranger_public, stranger_secret = zmq.curve_keypair()

    async def body() -> None:
        async with make_endpoint(curve=CurveServer.from_dir(tmp_path)) as ep:
            stranger = CurveClient(stranger_public, stranger_secret, server_public)
            mask = zmq.EVENT_HANDSHAKE_FAILED_AUTH | zmq.EVENT_HANDSHAKE_SUCCEEDED
            async with RawClient(ep.address, curve=stranger, monitor=mask) as client:
                await client.hello()
                assert await client.next_socket_event(10) == zmq.EVENT_HANDSHAKE_FAILED_AUTH
                for _ in range(100):
                    if ep.counters.rejected_keys:
                        break
                    await asyncio.sleep(0.01)
                assert ep.counters.rejected_keys >= 1
                with pytest.raises((TimeoutError, asyncio.TimeoutError)):
                    await client.recv(0.3)
                assert not ep.connected and ep.poll_events() == []

    run(body())


def test_a_plaintext_client_gets_nothing_from_a_curve_endpoint(tmp_path: Path, run) -> None:
    generate_keys(tmp_path)

    async def body() -> None:
        async with make_endpoint(curve=CurveServer.from_dir(tmp_path)) as ep, RawClient(ep.address) as c:
            await c.hello()
            with pytest.raises((TimeoutError, asyncio.TimeoutError)):
                await c.recv_until(Welcome, 0.5)
            assert not ep.connected

    run(body())


@pytest.mark.parametrize(
    "endpoint, local",
    [
        ("tcp://127.0.0.1:5556", True),
        ("tcp://127.3.2.1:5556", True),
        ("tcp://localhost:5556", True),
        ("tcp://[::1]:5556", True),
        ("ipc:///tmp/bridge.sock", True),
        ("inproc://bridge", True),
        ("tcp://0.0.0.0:5556", False),
        ("tcp://*:5556", False),
        ("tcp://192.168.1.20:5556", False),
        ("tcp://eth0:5556", False),
        ("tcp://[::]:5556", False),
    ],
)
def test_is_loopback(endpoint: str, local: bool) -> None:
    assert is_loopback(endpoint) is local


def test_plaintext_beyond_loopback_is_refused_unless_insecure(tmp_path: Path) -> None:
    with pytest.raises(InsecureBindError, match="refusing to listen on tcp://0.0.0.0:5556 without CurveZMQ: anyone"):
        make_endpoint(bind="tcp://0.0.0.0:5556")
    with pytest.raises(InsecureBindError, match="--insecure"):
        check_bind("tcp://*:5556", curve=None, insecure=False)
    # allowed, but nothing is bound here (tests listen on loopback only)
    check_bind("tcp://0.0.0.0:5556", curve=None, insecure=True)
    generate_keys(tmp_path)
    check_bind("tcp://0.0.0.0:5556", curve=CurveServer.from_dir(tmp_path), insecure=False)
    check_bind("tcp://127.0.0.1:5556", curve=None, insecure=False)
