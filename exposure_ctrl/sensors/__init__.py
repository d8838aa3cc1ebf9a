"""Heart-rate sources. Every source yields :class:`HeartSample`s.

Sources are chosen by name like python-can's interfaces: ``ble`` (a real strap through bleak),
``virtual-ble`` (the virtual strap shipped here, reached through the same bleak API), ``replay``
(a recording) and ``sim`` (a simulated patient).
"""

from exposure_ctrl.sensors.sample import HeartSample, Quality
from exposure_ctrl.sensors.source import (
    BaseHeartRateSource,
    DeviceInfo,
    Gap,
    HeartRateSource,
    SourceEvent,
    SourceState,
    SourceStatus,
    available_sources,
    open_source,
    register_source,
)

__all__ = [
    "HeartSample",
    "Quality",
    "HeartRateSource",
    "BaseHeartRateSource",
    "SourceEvent",
    "SourceState",
    "SourceStatus",
    "Gap",
    "DeviceInfo",
    "open_source",
    "register_source",
    "available_sources",
]
