"""exposure-ctrl: an adaptive controller for virtual-reality exposure therapy.

Heart rate in (BLE strap, replay or simulated patient), graded scene changes out (Unity bridge),
a safety shield and the therapist always above the policy, every session stored for review.
See README.md and DESIGN.md for the architecture.
"""

from exposure_ctrl._kernel_cache import guard as _guard_kernel_cache
from exposure_ctrl._version import __version__

# Before any compiled kernel runs: numba's cache checks only each kernel's own file, ours calls
# across files and bakes in constants from others (see exposure_ctrl/_kernel_cache.py).
_guard_kernel_cache()

from exposure_ctrl.sim.registration import register_on_gymnasium_import as _register_gym

__all__ = ["__version__"]

_register_gym()  # gymnasium.make("exposure_ctrl/Exposure-v0"): see exposure_ctrl/sim/registration.py
