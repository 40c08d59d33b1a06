"""Rendered prompts on disk, clause by clause, so static clauses are synthesized once.

Every method here blocks (synthesis, file I/O): call it from the ``tts_pool``.
"""

from __future__ import annotations

import hashlib
import os
import re
import string
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import suppress
from pathlib import Path
from typing import Protocol

from voiceagent.tts.base import Synthesizer
from voiceagent.tts.piper import normalize_text
from voiceagent.tts.splice import Clause, join_fragments, plan_clauses

SUFFIX = ".pcm"
"""Raw PCM16 little-endian mono 8 kHz, no header."""
STALE_TEMP_S = 3600.0
"""A temp file this old was left by a crashed writer (other processes may be writing now)."""
_PLACEHOLDER = re.compile(r"\{[^{}]*\}")


class ClauseSynthesizer(Synthesizer, Protocol):
    """A synthesizer that says how it splits text (one chunk per clause)."""

    def clauses(self, text: str) -> list[str]:
        """The clauses ``synthesize`` yields one chunk for."""
        ...


class PromptCache:
    """A Synthesizer that serves each clause from ``directory`` and synthesizes only misses.

    Files are named by sha256 of the synthesizer's name and the normalized clause, and written
    atomically (temp file, then rename): two threads or processes asking for the same clause may
    both synthesize it, but a reader only ever sees a missing file or a whole one.
    """

    def __init__(self, directory: Path, synthesizer: ClauseSynthesizer) -> None:
        self.directory = Path(directory)
        self.synthesizer = synthesizer
        self.name: str = synthesizer.name
        self.hits = 0
        """Clauses served from disk."""
        self.misses = 0
        """Clauses synthesized because no file held them."""
        self.hit_bytes = 0
        self.miss_bytes = 0
        self._lock = threading.Lock()
        self.directory.mkdir(parents=True, exist_ok=True)
        self._remove_stale_temps()

    @property
    def hit_ratio_audio(self) -> float:
        """Share of served audio (by duration) that came from disk; 0.0 before any request."""
        total = self.hit_bytes + self.miss_bytes
        return self.hit_bytes / total if total else 0.0

    def clauses(self, text: str) -> list[str]:
        """The synthesizer's own clauses of ``text``: the unit that is cached."""
        return self.synthesizer.clauses(text)

    def key(self, clause: str) -> str:
        """Hex sha256 of the synthesizer name and the normalized clause."""
        material = f"{self.synthesizer.name}\n{normalize_text(clause)}"
        return hashlib.sha256(material.encode("utf-8")).hexdigest()

    def path(self, clause: str) -> Path:
        """Where the clause's audio lives (whether or not it exists yet)."""
        return self.directory / f"{self.key(clause)}{SUFFIX}"

    def plan(self, text: str, parts: Sequence[tuple[str, bool]] = ()) -> list[Clause]:
        """The clauses of ``text`` (as ``clauses``), cut into fragments around filled-in values.

        ``parts`` is the prompt as ``(piece, variable)`` pairs (``Say.parts``); without it,
        every clause is said whole.
        """
        return plan_clauses(text, parts, self.synthesizer.clauses)

    def render(self, clause: Clause) -> bytes:
        """PCM16 8 kHz for one planned clause.

        The whole clause from disk when some earlier call stored it; otherwise, for a clause
        that holds values, its template fragments (prerendered) spliced around the values
        (synthesized now unless cached); otherwise the clause synthesized whole.
        """
        if not clause.fragments or self._read(self.path(clause.text)) is not None:
            return self._clause(clause.text, count=True)
        pieces = [(f, self._clause(f.text, count=True)) for f in clause.fragments]
        return join_fragments(pieces)

    def get(self, text: str) -> bytes:
        """PCM16 8 kHz for ``text``: every clause from disk, or synthesized and stored."""
        return b"".join(self._clause(clause, count=True) for clause in self.clauses(text))

    def synthesize(self, text: str) -> Iterator[bytes]:
        """Yield one PCM16 8 kHz chunk per clause, each from disk when present."""
        for clause in self.clauses(text):
            pcm16_8k = self._clause(clause, count=True)
            if pcm16_8k:
                yield pcm16_8k

    def prerender_parts(
        self, prompts: Iterable[Sequence[tuple[str, bool]]], values: bool = True
    ) -> int:
        """Store every fragment of these rendered prompts not on disk yet; return how many.

        With ``values=False`` only template text is rendered (the values are stand-ins, used
        when a dialplan loads); with ``values=True`` the values too (an account's name and
        amounts, rendered while the call's first prompt plays).
        """
        rendered = 0
        for parts in prompts:
            text = "".join(piece for piece, _ in parts)
            for clause in self.plan(text, parts):
                wanted = (
                    [f.text for f in clause.fragments if values or not f.variable]
                    if clause.fragments
                    else [clause.text]
                )
                for piece in wanted:
                    path = self.path(piece)
                    if self._read(path) is None:
                        self._store(path, self._render(piece))
                        rendered += 1
        return rendered

    def prerender(self, texts: Iterable[str]) -> int:
        """Store every clause of ``texts`` not on disk yet; return how many were synthesized.

        Not counted as hits or misses: it runs when a dialplan loads, not during a call.
        """
        rendered = 0
        for text in texts:
            for clause in self.clauses(text):
                if self._read(self.path(clause)) is None:
                    self._store(self.path(clause), self._render(clause))
                    rendered += 1
        return rendered

    def prune(self, max_bytes: int) -> int:
        """Delete the least recently used files until the directory holds ``max_bytes``.

        Returns how many files were deleted. A hit refreshes a file's mtime, so prerendered
        static clauses in use survive while one-off clauses (names, amounts) go first.
        """
        entries = []
        for path in self.directory.glob(f"*{SUFFIX}"):
            with suppress(FileNotFoundError):
                stat = path.stat()
                entries.append((stat.st_mtime, stat.st_size, path))
        total = sum(size for _, size, _ in entries)
        deleted = 0
        for _, size, path in sorted(entries):
            if total <= max_bytes:
                break
            with suppress(FileNotFoundError):
                path.unlink()
                deleted += 1
            total -= size
        return deleted

    def _clause(self, clause: str, count: bool) -> bytes:
        path = self.path(clause)
        pcm16_8k = self._read(path)
        hit = pcm16_8k is not None
        if pcm16_8k is None:
            pcm16_8k = self._render(clause)
            self._store(path, pcm16_8k)
        if count:
            with self._lock:
                if hit:
                    self.hits += 1
                    self.hit_bytes += len(pcm16_8k)
                else:
                    self.misses += 1
                    self.miss_bytes += len(pcm16_8k)
        return pcm16_8k

    def _render(self, clause: str) -> bytes:
        return b"".join(self.synthesizer.synthesize(clause))

    @staticmethod
    def _read(path: Path) -> bytes | None:
        """The file's audio, or None when it is missing or not whole PCM16 samples."""
        try:
            pcm16_8k = path.read_bytes()
        except FileNotFoundError:
            return None
        if not pcm16_8k or len(pcm16_8k) % 2:
            return None
        with suppress(OSError):
            os.utime(path)  # recency for prune()
        return pcm16_8k

    def _store(self, path: Path, pcm16_8k: bytes) -> None:
        if not pcm16_8k:
            return  # nothing to say: an empty file would read back as a miss anyway
        fd, temp = tempfile.mkstemp(prefix=f".{path.stem[:16]}.", suffix=".tmp", dir=path.parent)
        try:
            try:
                _write_all(fd, pcm16_8k)
            finally:
                os.close(fd)
            os.replace(temp, path)
        except BaseException:
            with suppress(FileNotFoundError):
                os.unlink(temp)
            raise

    def _remove_stale_temps(self) -> None:
        cutoff = time.time() - STALE_TEMP_S
        for temp in self.directory.glob(".*.tmp"):
            with suppress(FileNotFoundError):
                if temp.stat().st_mtime < cutoff:
                    temp.unlink()


def _write_all(fd: int, data: bytes) -> None:
    """Write every byte of ``data`` to ``fd`` (os.write may write less than asked)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def static_clauses(template: str, synthesizer: ClauseSynthesizer) -> list[str]:
    """The clauses of a prompt template that carry no ``{placeholder}``, to prerender.

    Best effort: a placeholder that renders to several words can move a clause boundary, and a
    clause that then differs is simply rendered on its first use instead.
    """
    return [c for c in synthesizer.clauses(template) if not _PLACEHOLDER.search(c)]


STAND_IN = "nombre apellido"
"""What a placeholder stands for when a template is prerendered before any account is known:
two ordinary words, as most values are (a name, "quince de enero"), so clause boundaries fall
where they will with real values."""


def template_prompt_parts(template: str) -> tuple[tuple[str, bool], ...]:
    """A template as ``(piece, variable)`` parts with every placeholder as a stand-in value."""
    parts: list[tuple[str, bool]] = []
    for literal, field, _, _ in string.Formatter().parse(template):
        if literal:
            parts.append((literal, False))
        if field is not None:
            parts.append((STAND_IN, True))
    return tuple(parts)
