"""The arousal tests import their from-scratch reference (``arousal_reference.py``) by name;
with pytest's importlib import mode this folder must be on ``sys.path`` for that."""

from __future__ import annotations

import sys
from pathlib import Path

_HERE = str(Path(__file__).parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)
