"""CurveZMQ keys, the headset allow-list, and the rule that plaintext stays on loopback.

Key files are ZeroMQ "zcert" text files (``public-key = "..."``, ``secret-key = "..."``, Z85),
the format pyzmq, czmq and NetMQ users all read. :func:`generate_keys` writes one directory::

    DIR/                          mode 0700
      controller.key              controller public key: give it to every headset
      controller.key_secret       controller secret key: stays on the controller (0600)
      headset.key                 headset public key
      headset.key_secret          headset secret key: copy it to the headset (0600)
      allowed_headsets/           the controller's allow-list: one *.key file per admitted headset
        headset.key

The controller is the CURVE server (:class:`CurveServer`); it admits only client public keys
found in the allow-list directory. A refused key never reaches the application: the CURVE
handshake fails below it, and the endpoint only counts it (``counters.rejected_keys``). A
headset is a CURVE client (:class:`CurveClient`): its own key pair plus the controller's public
key.

:func:`check_bind` is the rule of PROTOCOL.md "Transport": listening beyond loopback requires
CURVE, unless the operator passes an explicit insecure flag.
"""

from __future__ import annotations

import ipaddress
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import zmq
import zmq.auth
from zmq.utils import z85

from unity_bridge.errors import BridgeConfigError, InsecureBindError, KeyFileError

__all__ = [
    "KeySet",
    "CurveServer",
    "CurveClient",
    "AllowList",
    "generate_keys",
    "load_keypair",
    "load_public_key",
    "is_loopback",
    "check_bind",
    "curve_available",
]

log = logging.getLogger(__name__)

CONTROLLER = "controller"
HEADSET = "headset"
ALLOW_DIR = "allowed_headsets"


def curve_available() -> bool:
    """Whether the libzmq in use was built with CURVE security."""
    return bool(zmq.has("curve"))


def _require_curve() -> None:
    if not curve_available():
        raise BridgeConfigError(
            "this libzmq was built without CURVE security (zmq.has('curve') is False); "
            "install a pyzmq wheel, which bundles libzmq with libsodium/tweetnacl"
        )


# --- key files -------------------------------------------------------------------------------


@dataclass(frozen=True)
class KeySet:
    """Where :func:`generate_keys` put the files."""

    directory: Path
    controller_public: Path
    controller_secret: Path
    headset_public: Path
    headset_secret: Path
    allow_dir: Path


def generate_keys(directory: str | os.PathLike[str], *, force: bool = False) -> KeySet:
    """Create controller and headset key pairs and an allow-list holding the headset's key.

    Refuses to overwrite existing keys unless ``force`` (a new controller key locks out every
    headset configured with the old one). Secret files are readable by their owner only.
    """
    _require_curve()
    d = Path(directory).expanduser()
    allow = d / ALLOW_DIR
    existing = [p for p in (d / f"{CONTROLLER}.key_secret", d / f"{HEADSET}.key_secret") if p.exists()]
    if existing and not force:
        raise KeyFileError(
            f"keys already exist in {d} ({', '.join(p.name for p in existing)}); "
            "pass --force to replace them (every headset then needs the new controller.key)"
        )
    try:
        d.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(d, 0o700)
        allow.mkdir(exist_ok=True, mode=0o700)
        paths = {}
        for name in (CONTROLLER, HEADSET):
            pub, sec = zmq.auth.create_certificates(d, name)
            os.chmod(sec, 0o600)
            paths[name] = (Path(pub), Path(sec))
        allowed = allow / f"{HEADSET}.key"
        allowed.write_bytes(paths[HEADSET][0].read_bytes())
    except OSError as e:
        raise KeyFileError(f"cannot write keys to {d}: {e.strerror or e}") from e
    return KeySet(
        directory=d,
        controller_public=paths[CONTROLLER][0],
        controller_secret=paths[CONTROLLER][1],
        headset_public=paths[HEADSET][0],
        headset_secret=paths[HEADSET][1],
        allow_dir=allow,
    )


def _check_z85_key(key: bytes, path: Path, what: str) -> bytes:
    if len(key) != 40:
        raise KeyFileError(f"{path}: {what} must be 40 Z85 characters, found {len(key)}")
    try:
        z85.decode(key)
    except Exception:
        raise KeyFileError(f"{path}: {what} is not valid Z85") from None
    return key


def load_keypair(path: str | os.PathLike[str]) -> tuple[bytes, bytes]:
    """(public, secret) Z85 keys from a ``*.key_secret`` file."""
    p = Path(path).expanduser()
    try:
        public, secret = zmq.auth.load_certificate(p)
    except (OSError, ValueError) as e:
        raise KeyFileError(f"cannot read CURVE key pair from {p}: {e}") from e
    if not secret:
        raise KeyFileError(
            f"{p} holds no secret-key; give the *.key_secret file, not the public *.key"
        )
    return _check_z85_key(public, p, "public-key"), _check_z85_key(secret, p, "secret-key")


def load_public_key(path: str | os.PathLike[str]) -> bytes:
    """The Z85 public key from a ``*.key`` (or ``*.key_secret``) file."""
    p = Path(path).expanduser()
    try:
        public, _ = zmq.auth.load_certificate(p)
    except (OSError, ValueError) as e:
        raise KeyFileError(f"cannot read CURVE public key from {p}: {e}") from e
    return _check_z85_key(public, p, "public-key")


# --- server and client settings --------------------------------------------------------------


class AllowList:
    """The headset public keys the controller admits: every ``*.key`` file in ``directory``.

    Used as pyzmq's CURVE credentials provider (``callback(domain, key) -> bool``); counts the
    keys it refuses. :meth:`reload` re-reads the directory (after adding a headset).
    """

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory).expanduser()
        self.keys: frozenset[bytes] = frozenset()
        self.rejected = 0
        self.admitted = 0
        self.on_reject: Callable[[bytes], None] | None = None
        self.reload()

    def reload(self) -> None:
        if not self.directory.is_dir():
            raise KeyFileError(
                f"allow-list directory {self.directory} does not exist; create it with "
                "`exposure-ctrl keys generate` or put the headsets' *.key files there"
            )
        try:
            certs = zmq.auth.load_certificates(self.directory)
        except (OSError, ValueError) as e:
            raise KeyFileError(f"cannot read the allow-list {self.directory}: {e}") from e
        self.keys = frozenset(certs)
        if not self.keys:
            log.warning("allow-list %s holds no *.key file: every headset will be refused", self.directory)

    def callback(self, domain: str, key: bytes) -> bool:
        """pyzmq credentials-provider hook: ``key`` is the client's Z85 public key."""
        if key in self.keys:
            self.admitted += 1
            return True
        self.rejected += 1
        log.warning("CURVE: refused headset key %s… (not in %s)", key[:8].decode("ascii", "replace"), self.directory)
        if self.on_reject is not None:
            self.on_reject(key)
        return False


@dataclass
class CurveServer:
    """Controller-side CURVE settings: its key pair and the allow-list of headset keys."""

    public_key: bytes
    secret_key: bytes
    allow: AllowList = field(repr=False)

    @classmethod
    def from_files(
        cls, secret_key_file: str | os.PathLike[str], allow_dir: str | os.PathLike[str]
    ) -> CurveServer:
        _require_curve()
        public, secret = load_keypair(secret_key_file)
        return cls(public, secret, AllowList(allow_dir))

    @classmethod
    def from_dir(cls, directory: str | os.PathLike[str]) -> CurveServer:
        """From a directory made by :func:`generate_keys`."""
        d = Path(directory).expanduser()
        return cls.from_files(d / f"{CONTROLLER}.key_secret", d / ALLOW_DIR)

    def apply(self, socket: zmq.Socket) -> None:
        socket.curve_secretkey = self.secret_key
        socket.curve_publickey = self.public_key
        socket.curve_server = True


@dataclass(frozen=True)
class CurveClient:
    """Headset-side CURVE settings: its key pair and the controller's public key."""

    public_key: bytes
    secret_key: bytes
    server_key: bytes

    @classmethod
    def from_files(
        cls, secret_key_file: str | os.PathLike[str], server_key_file: str | os.PathLike[str]
    ) -> CurveClient:
        _require_curve()
        public, secret = load_keypair(secret_key_file)
        return cls(public, secret, load_public_key(server_key_file))

    @classmethod
    def from_dir(cls, directory: str | os.PathLike[str]) -> CurveClient:
        """From a directory made by :func:`generate_keys`."""
        d = Path(directory).expanduser()
        return cls.from_files(d / f"{HEADSET}.key_secret", d / f"{CONTROLLER}.key")

    def apply(self, socket: zmq.Socket) -> None:
        socket.curve_secretkey = self.secret_key
        socket.curve_publickey = self.public_key
        socket.curve_serverkey = self.server_key


# --- where plaintext may listen --------------------------------------------------------------


def _host_of(endpoint: str) -> tuple[str, str]:
    if "://" not in endpoint:
        raise BridgeConfigError(
            f"endpoint {endpoint!r} has no transport; expected e.g. 'tcp://127.0.0.1:5556'"
        )
    transport, rest = endpoint.split("://", 1)
    if transport != "tcp":
        return transport, rest
    if rest.startswith("["):  # tcp://[::1]:5556
        host = rest[1 : rest.find("]")] if "]" in rest else rest
    else:
        host = rest.rsplit(":", 1)[0] if ":" in rest else rest
    if ";" in host:  # tcp://source;dest form: the bind address is what matters
        host = host.split(";", 1)[0]
    return transport, host


def is_loopback(endpoint: str) -> bool:
    """Whether ``endpoint`` listens only on this machine (loopback TCP, ipc or inproc)."""
    transport, host = _host_of(endpoint)
    if transport in ("ipc", "inproc"):
        return True
    if transport != "tcp":
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # '*', an interface name or a host name: assume it reaches the network


def check_bind(endpoint: str, *, curve: object | None, insecure: bool) -> None:
    """Refuse plaintext listening beyond loopback unless ``insecure`` is given explicitly."""
    if curve is not None or is_loopback(endpoint):
        return
    if not insecure:
        raise InsecureBindError(
            f"refusing to listen on {endpoint} without CurveZMQ: anyone on that network could "
            "read the session and drive the patient's headset. Create keys with "
            "`exposure-ctrl keys generate` and give them to the controller and the headset, or "
            "pass --insecure only on a network you trust completely."
        )
    log.warning("listening on %s in PLAINTEXT (insecure flag given): no encryption, no allow-list", endpoint)

