"""The transport interface a call session talks to: 20 ms frames in and out, plus call control."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Inbound:
    """What arrived from the debtor's side during one 20 ms tick."""

    pcm16_8k: bytes
    """Exactly one frame (silence when nothing arrived: AudioSocket sends nothing while silent)."""
    dtmf: str = ""
    """Keys pressed during this tick (RFC 2833 / AudioSocket DTMF)."""
    hangup: bool = False
    """The far end hung up; ``pcm16_8k`` is silence."""


class CallTransport(Protocol):
    """One call's media and control. ``read`` paces the session: one frame per 20 ms."""

    async def read(self) -> Inbound:
        """The next inbound tick (a real transport waits for it; a simulation returns at once)."""
        ...

    async def write(self, pcm16_8k: bytes) -> None:
        """Send one outbound frame (called once per tick, silence included)."""
        ...

    async def hangup(self) -> None:
        """End the call from our side."""
        ...

    async def transfer(self, target: str) -> bool:
        """Hand the call to a human queue or extension.

        Returns False when the transfer was refused (nobody available) and the call goes on,
        so the agent can offer a callback instead of dropping the debtor.
        """
        ...
