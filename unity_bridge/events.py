"""What the controller endpoint tells the session, as typed, immutable records.

Every event has ``at``: the endpoint clock's time (``now()``, seconds) when it happened. The
session consumes them with ``async for ev in endpoint.events()`` or ``await
endpoint.next_event(timeout)`` and dispatches with ``match``/``isinstance``.

=====================  ===========================================================================
event                  when
=====================  ===========================================================================
HeadsetConnected       a ``hello`` was admitted and answered with ``welcome`` (also on re-hello)
HeadsetReplaced        a newer ``hello`` from another connection took over (sent before the
                       new peer's HeadsetConnected); the old peer got ``end`` ``replaced``
HeadsetLost            nothing heard from the admitted headset for ``timeout_s`` (rule 5)
Bye                    the headset left in order (``bye``)
SceneAcked             the headset finished showing a ``scene`` (``rtt_s`` includes the transition)
Panic                  the patient pressed stop; ``safe`` was already sent (rule 8)
Suds                   a SUDS rating 0..100 from the headset
Removed / Worn         the headset was taken off / put on
Gaze                   whether the stimulus is in view
=====================  ===========================================================================
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

__all__ = [
    "HeadsetConnected",
    "HeadsetReplaced",
    "HeadsetLost",
    "Bye",
    "SceneAcked",
    "Panic",
    "Suds",
    "Removed",
    "Worn",
    "Gaze",
    "BridgeEvent",
]


@dataclass(frozen=True)
class HeadsetConnected:
    """A headset was admitted; it was sent ``welcome`` carrying ``state``."""

    client: str
    parameters: tuple[str, ...]
    state: dict
    peer: str  # the connection's routing id, hex
    key: str | None  # the CURVE public key (Z85) when CURVE is on
    at: float


@dataclass(frozen=True)
class HeadsetReplaced:
    """A newer ``hello`` won (rule 3); ``old_client`` got ``end`` ``replaced``."""

    old_client: str
    new_client: str
    old_peer: str
    new_peer: str
    at: float


@dataclass(frozen=True)
class HeadsetLost:
    """Nothing heard from the admitted headset for ``silent_s`` ≥ ``timeout_s`` (rule 5)."""

    client: str
    peer: str
    silent_s: float
    at: float


@dataclass(frozen=True)
class Bye:
    """The headset said ``bye`` and is no longer admitted."""

    client: str
    reason: str
    at: float


@dataclass(frozen=True)
class SceneAcked:
    """The headset acked a scene.

    ``scene_seq`` is the seq :meth:`ControllerEndpoint.send_scene` returned; ``seq`` is the wire
    seq acked (different when the ack answers a re-send). ``rtt_s = acked_at - sent_at`` for that
    wire seq, so it includes ``transition_s``; ``overhead_s`` is ``rtt_s - transition_s``.
    """

    seq: int
    scene_seq: int
    state: dict
    transition_s: float
    sent_at: float
    acked_at: float
    rtt_s: float
    resends: int
    at: float

    @property
    def overhead_s(self) -> float:
        return self.rtt_s - self.transition_s


@dataclass(frozen=True)
class Panic:
    """The patient pressed stop. The endpoint sent ``safe`` at ``safe_sent_at`` before this
    event was delivered; ``at`` is when the panic arrived."""

    client: str
    safe_seq: int
    safe_sent_at: float
    at: float

    @property
    def reaction_s(self) -> float:
        return self.safe_sent_at - self.at


@dataclass(frozen=True)
class Suds:
    """A SUDS rating (0..100) entered on the headset."""

    value: int
    at: float


@dataclass(frozen=True)
class Removed:
    """The headset was taken off the head."""

    at: float


@dataclass(frozen=True)
class Worn:
    """The headset was put on."""

    at: float


@dataclass(frozen=True)
class Gaze:
    """Whether the stimulus is in the patient's view."""

    value: bool
    at: float


BridgeEvent = Union[
    HeadsetConnected, HeadsetReplaced, HeadsetLost, Bye, SceneAcked, Panic, Suds, Removed, Worn, Gaze
]
