"""Clauses cut into template text and filled-in values, and the audio of those pieces joined.

A prompt such as "Hola {first_name}, le habla {agent_name}." is said as clauses; a clause that
holds a value is said as fragments ("Hola", "María", "le habla", "Sofía."): the template's
fragments are rendered once per voice and reused by every call, and only the values are
synthesized (or taken from the cache when another call already said them).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from voiceagent.audio.format import RATE_HZ

_WORD = re.compile(r"\w", re.UNICODE)
_LEADING_PAUSE = re.compile(r"^[\s,;:—–-]+")
_TOKEN = re.compile(r"\S+")

SILENCE_LEVEL = 300
"""PCM16 magnitude under which a fragment's edge counts as silence (about -40 dBFS)."""
EDGE_KEEP_MS = 20
"""Silence kept at a trimmed edge, so consonants are not clipped."""
JOIN_GAP_MS = 40
"""Pause between two fragments of one phrase."""
PAUSE_GAP_MS = 160
"""Pause where the text has a comma, colon or dash between fragments."""


@dataclass(frozen=True, slots=True)
class Fragment:
    """One piece of a clause to synthesize on its own."""

    text: str
    variable: bool
    """A filled-in value (name, amount, date) rather than template text."""
    pause_before: bool = False
    """The text had a comma, colon or dash right before this fragment."""


@dataclass(frozen=True, slots=True)
class Clause:
    """One clause as the synthesizer splits it, with its fragments when it holds a value."""

    text: str
    fragments: tuple[Fragment, ...] = ()
    """Empty when the clause is template text only (it is then synthesized whole)."""


def _masked(parts: Sequence[tuple[str, bool]]) -> tuple[str, list[bool]]:
    """The normalized text of ``parts`` and, per character, whether it belongs to a value."""
    chars: list[tuple[str, bool]] = []
    for text, variable in parts:
        chars.extend((c, variable) for c in unicodedata.normalize("NFC", text))
    joined = "".join(c for c, _ in chars)
    out: list[str] = []
    mask: list[bool] = []
    for match in _TOKEN.finditer(joined):
        if out:
            # A space between two value characters is part of the value ("María González").
            out.append(" ")
            mask.append(mask[-1] and chars[match.start()][1])
        out.append(match.group())
        mask.extend(v for _, v in chars[match.start() : match.end()])
    return "".join(out), mask


def plan_clauses(
    text: str, parts: Sequence[tuple[str, bool]], split: Callable[[str], list[str]]
) -> list[Clause]:
    """``split(text)``'s clauses, each cut into fragments where it holds a value.

    Always returns as many clauses as ``split(text)``; when ``parts`` is empty or does not
    spell ``text``, every clause is left whole.
    """
    clauses = split(text)
    normalized, mask = _masked(parts) if parts else ("", [])
    if not parts or not any(mask) or normalized != " ".join(text.split()):
        return [Clause(c) for c in clauses]
    out: list[Clause] = []
    cursor = 0
    for clause in clauses:
        # A clause cut for length gets a comma the text did not have ("... pesos,").
        added = "," if normalized.find(clause, cursor) < 0 and clause.endswith(",") else ""
        body = clause[: len(clause) - len(added)]
        at = normalized.find(body, cursor)
        if at < 0:
            out.append(Clause(clause))
            continue
        cursor = at + len(body)
        clause_mask = mask[at:cursor]
        if not any(clause_mask):
            out.append(Clause(clause))
            continue
        out.append(
            Clause(clause, _fragments(body + added, clause_mask + [mask[cursor - 1]] * len(added)))
        )
    return out


def _fragments(clause: str, mask: list[bool]) -> tuple[Fragment, ...]:
    runs: list[tuple[str, bool]] = []
    start = 0
    for i in range(1, len(clause) + 1):
        if i == len(clause) or mask[i] != mask[start]:
            runs.append((clause[start:i], mask[start]))
            start = i
    fragments: list[Fragment] = []
    for text, variable in runs:
        if not _WORD.search(text):
            # Punctuation only (the "." after a final value): it belongs to the fragment before.
            body = text.strip()
            if fragments and body:
                last = fragments[-1]
                fragments[-1] = Fragment(last.text + body, last.variable, last.pause_before)
            continue
        body = _LEADING_PAUSE.sub("", text).strip()
        fragments.append(Fragment(body, variable, pause_before=_pause_in(text)))
    return tuple(_shared_values(fragments))


def _shared_values(fragments: list[Fragment]) -> list[Fragment]:
    """A value's trailing comma becomes a pause, so "cien pesos," and "cien pesos" share audio."""
    out: list[Fragment] = []
    pause_next = False
    for f in fragments:
        if pause_next:
            f = Fragment(f.text, f.variable, pause_before=True)
        pause_next = f.variable and f.text.endswith((",", ";", ":"))
        if pause_next:
            f = Fragment(f.text.rstrip(",;:").rstrip(), f.variable, f.pause_before)
        out.append(f)
    return out


def _pause_in(text: str) -> bool:
    """Whether the text before a fragment's words starts with a comma, colon or dash."""
    lead = _LEADING_PAUSE.match(text)
    return bool(lead and any(c in lead.group() for c in ",;:—–"))


def trim_edges(pcm16_8k: bytes, start: bool, end: bool) -> bytes:
    """Cut the silence Piper puts before and/or after an utterance, keeping a few ms."""
    samples = np.frombuffer(pcm16_8k, dtype="<i2")
    loud = np.flatnonzero(np.abs(samples.astype(np.int32)) > SILENCE_LEVEL)
    if loud.size == 0:
        return b""
    keep = RATE_HZ * EDGE_KEEP_MS // 1000
    first = max(0, int(loud[0]) - keep) if start else 0
    last = min(samples.size, int(loud[-1]) + keep + 1) if end else samples.size
    return samples[first:last].tobytes()


def join_fragments(pieces: Sequence[tuple[Fragment, bytes]]) -> bytes:
    """One clause's audio from its fragments' audio: inner edges trimmed, short pauses between."""
    out: list[bytes] = []
    for i, (fragment, pcm16_8k) in enumerate(pieces):
        trimmed = trim_edges(pcm16_8k, start=i > 0, end=i < len(pieces) - 1)
        if i > 0:
            pause = fragment.pause_before or pieces[i - 1][0].text.endswith((",", ";", ":"))
            gap_ms = PAUSE_GAP_MS if pause else JOIN_GAP_MS
            out.append(bytes(2 * RATE_HZ * gap_ms // 1000))
        out.append(trimmed)
    return b"".join(out)
