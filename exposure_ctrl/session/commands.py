"""Therapist commands: typed, parsed from a line of text or built by the console.

Every command is executed and logged with who gave it (DESIGN.md invariant 1). The one exception
is an escalation while the patient is over the ceiling, which the shield refuses with a visible
reason (the refusal is logged too).
"""

from __future__ import annotations

import dataclasses
import enum

from exposure_ctrl.errors import ConfigError

__all__ = ["CommandKind", "TherapistCommand", "parse_command", "COMMAND_HELP"]


class CommandKind(str, enum.Enum):
    PAUSE = "pause"  # the policy stops changing the scene (the shield still protects)
    RESUME = "resume"  # the policy acts again; also clears a latched safe state
    HOLD = "hold"  # keep the current scene for one more dwell period
    STEP_UP = "step_up"  # one step up the hierarchy (or one parameter up)
    STEP_DOWN = "step_down"  # one step down
    SAFE = "safe"  # show the safe scene now (latches until resume)
    END = "end"  # end exposure: recovery, then the session ends
    SUDS = "suds"  # a SUDS rating 0..100
    NOTE = "note"  # a free-text note
    ACCEPT = "accept"  # advisory mode: execute the pending proposal
    REJECT = "reject"  # advisory mode: drop the pending proposal
    CONFIRM_BASELINE = "confirm_baseline"  # start exposure on a baseline of poor quality


COMMAND_HELP = {
    CommandKind.PAUSE: "pause the policy",
    CommandKind.RESUME: "resume the policy (also after a safe stop)",
    CommandKind.HOLD: "keep the current scene a while longer",
    CommandKind.STEP_UP: "step up (optionally: step_up PARAMETER)",
    CommandKind.STEP_DOWN: "step down (optionally: step_down PARAMETER)",
    CommandKind.SAFE: "safe scene now",
    CommandKind.END: "end exposure (recovery follows)",
    CommandKind.SUDS: "SUDS rating: suds 0..100",
    CommandKind.NOTE: "note: note TEXT",
    CommandKind.ACCEPT: "accept the policy's proposal (advisory mode)",
    CommandKind.REJECT: "reject the policy's proposal (advisory mode)",
    CommandKind.CONFIRM_BASELINE: "start exposure although the baseline is of poor quality",
}

_ALIASES = {
    "up": CommandKind.STEP_UP,
    "down": CommandKind.STEP_DOWN,
    "stop": CommandKind.SAFE,
    "confirm": CommandKind.CONFIRM_BASELINE,
}


@dataclasses.dataclass(frozen=True)
class TherapistCommand:
    """One command; ``parameter`` names a parameter for step_up/step_down (None: the policy's
    hierarchy logic picks), ``value`` is the SUDS rating, ``text`` the note."""

    kind: CommandKind
    who: str = "therapist"
    parameter: str | None = None
    value: int | None = None
    text: str | None = None

    def __post_init__(self) -> None:
        if self.kind is CommandKind.SUDS:
            if isinstance(self.value, bool) or not isinstance(self.value, int) or not 0 <= self.value <= 100:
                raise ConfigError(f"SUDS is a whole number from 0 to 100, found {self.value!r}")
        if self.kind is CommandKind.NOTE and not (self.text and self.text.strip()):
            raise ConfigError("a note needs some text")
        if not self.who:
            raise ConfigError("a command needs to say who gave it")

    def describe(self) -> str:
        extra = self.parameter or (str(self.value) if self.value is not None else "") or self.text or ""
        return f"{self.kind.value} {extra}".strip()


def parse_command(line: str, who: str = "therapist") -> TherapistCommand:
    """``"suds 45"``, ``"down"``, ``"step_up size"``, ``"note patient reports dizziness"``…"""
    words = line.strip().split(maxsplit=1)
    if not words:
        raise ConfigError("empty command")
    head = words[0].lower().replace("-", "_")
    rest = words[1] if len(words) > 1 else ""
    kind = _ALIASES.get(head)
    if kind is None:
        try:
            kind = CommandKind(head)
        except ValueError:
            from exposure_ctrl.scenario.model import did_you_mean

            names = [k.value for k in CommandKind] + list(_ALIASES)
            raise ConfigError(f"unknown command {head!r}" + did_you_mean(head, names)) from None
    if kind is CommandKind.SUDS:
        try:
            value = int(rest)
        except ValueError:
            raise ConfigError(f"SUDS needs a number from 0 to 100, found {rest!r}") from None
        return TherapistCommand(kind, who=who, value=value)
    if kind is CommandKind.NOTE:
        return TherapistCommand(kind, who=who, text=rest)
    if kind in (CommandKind.STEP_UP, CommandKind.STEP_DOWN) and rest:
        return TherapistCommand(kind, who=who, parameter=rest.strip())
    if rest:
        raise ConfigError(f"{kind.value!r} takes no argument, found {rest!r}")
    return TherapistCommand(kind, who=who)
