"""The random numbers of the simulator, drawn from one generator in blocks.

Every decision period consumes a fixed number of uniform and standard-normal draws per patient
(:class:`NoiseLayout`), time-major so that the beat generator reads contiguous rows. The
environment hands its own ``np_random`` to :class:`NoiseSource`; nothing else in the simulator
draws random numbers during a period. Drawing several periods at once (``block``) amortises the
generator's call overhead for small N; the stream is still a pure function of the seed, N and
the block size.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from exposure_ctrl.sim.patient import PatientNoise
from exposure_ctrl.sim.sensors import SensorNoise

__all__ = ["NoiseLayout", "NoiseSource", "split_noise"]


@dataclasses.dataclass(frozen=True)
class NoiseLayout:
    """How many draws one period needs per patient."""

    beats: int  # B: one uniform per potential beat
    sensor_z: int  # standard normals for the sensor (S for a wrist sensor, 0 for a strap)

    @property
    def n_uniform(self) -> int:
        return self.beats + 2 + 9

    @property
    def n_normal(self) -> int:
        return 3 + self.sensor_z


def split_noise(layout: NoiseLayout, u: np.ndarray, z: np.ndarray) -> tuple[PatientNoise, SensorNoise]:
    """Views of one period's draws ``u`` (n_uniform, N) and ``z`` (n_normal, N)."""
    b = layout.beats
    return (
        PatientNoise(beat_u=u[:b], ectopic_u=u[b : b + 2], z=z[:3]),
        SensorNoise(u=u[b + 2 : b + 11], z=z[3:]),
    )


class NoiseSource:
    """Draws each period's noise for N patients from ``rng``, ``block`` periods at a time."""

    def __init__(self, rng: np.random.Generator, n: int, layout: NoiseLayout, block: int | None = None) -> None:
        self.n = int(n)
        self.layout = layout
        self.block = int(block) if block is not None else max(1, 256 // max(self.n, 1))
        self.set_rng(rng)

    def set_rng(self, rng: np.random.Generator) -> None:
        """Use ``rng`` from now on and drop what was drawn from the previous one."""
        self.rng = rng
        self._u: np.ndarray | None = None
        self._z: np.ndarray | None = None
        self._i = self.block

    def next(self) -> tuple[np.ndarray, np.ndarray]:
        """The next period's draws as they come: uniforms (n_uniform, N), normals (n_normal, N)."""
        i = self._i
        if i >= self.block or self._u is None or self._z is None:
            lay = self.layout
            self._u = self.rng.random((self.block, lay.n_uniform, self.n))
            self._z = self.rng.standard_normal((self.block, lay.n_normal, self.n))
            i = 0
        self._i = i + 1
        return self._u[i], self._z[i]  # type: ignore[index]
