"""The session store: every sample, decision and scene change of every session, in SQLite.

- :class:`Store` opens (creates, migrates) a store file and answers queries;
  :meth:`Store.begin_session` returns a :class:`SessionWriter` whose appends are cheap and are
  committed at least once a second by a background thread (DESIGN.md invariant 3).
- :mod:`~exposure_ctrl.store.records`: the enums (outcome, phase, mode, trigger...), patient-code
  validation, and the typed rows read back.
- :mod:`~exposure_ctrl.store.schema`: the schema and its forward migrations.
- :mod:`~exposure_ctrl.store.files`: the default location and owner-only files.

See docs/store.md for the schema, migrations and privacy.
"""

from exposure_ctrl.store.db import Store, software_versions
from exposure_ctrl.store.files import data_dir, default_store_path, write_private_text
from exposure_ctrl.store.records import (
    Baseline,
    Command,
    Decision,
    Event,
    Gap,
    GapKind,
    Mode,
    ModelEstimate,
    Note,
    Outcome,
    Phase,
    PhaseChange,
    Response,
    Sample,
    SceneChange,
    SessionInfo,
    SessionRecord,
    SessionSummary,
    Suds,
    SudsSource,
    Trigger,
    validate_patient_code,
)
from exposure_ctrl.store.schema import SCHEMA_VERSION
from exposure_ctrl.store.writer import DEFAULT_COMMIT_INTERVAL_S, SessionWriter

__all__ = [
    "Store",
    "SessionWriter",
    "SCHEMA_VERSION",
    "DEFAULT_COMMIT_INTERVAL_S",
    "software_versions",
    "data_dir",
    "default_store_path",
    "write_private_text",
    "validate_patient_code",
    "Outcome",
    "Phase",
    "Mode",
    "Trigger",
    "GapKind",
    "SudsSource",
    "Response",
    "SessionInfo",
    "SessionSummary",
    "SessionRecord",
    "Sample",
    "Baseline",
    "Decision",
    "SceneChange",
    "Event",
    "Gap",
    "Suds",
    "Note",
    "ModelEstimate",
    "PhaseChange",
    "Command",
]
