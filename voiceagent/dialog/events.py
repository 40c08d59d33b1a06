"""What the dialog engine reacts to: one event per debtor turn or call happening."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Start:
    """The call is answered: say the first state's prompts."""


@dataclass(frozen=True, slots=True)
class Heard:
    """The debtor said something (a final transcript)."""

    text: str


@dataclass(frozen=True, slots=True)
class NoInput:
    """The debtor said nothing before the no-input timeout."""


@dataclass(frozen=True, slots=True)
class Dtmf:
    """The debtor pressed keys."""

    digits: str


@dataclass(frozen=True, slots=True)
class Hangup:
    """The debtor hung up."""


Event = Start | Heard | NoInput | Dtmf | Hangup
