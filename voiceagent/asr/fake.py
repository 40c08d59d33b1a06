"""A scripted recognizer for testing other stages (the call session, the dialog) in isolation."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Sequence

from voiceagent.asr.base import Transcript, Word

ENGINE = "fake"


class FakeRecognizer:
    """Returns the scripted texts as finals, one per ``finish()``, across all its sessions."""

    name = ENGINE
    supports_grammar = True
    """Records grammar switches, so tests can check the session sends them."""

    def __init__(self, script: list[str]) -> None:
        self._script: deque[str] = deque(script)
        self._lock = threading.Lock()
        self.grammars: list[tuple[str, ...] | None] = []
        """The grammar of every session opened or switched, in order, for assertions."""
        self.bytes_fed = 0
        """PCM16 bytes fed to all sessions."""

    def open(self, grammar: Sequence[str] | None = None) -> FakeSession:
        """A new session reading from the shared script."""
        self._record_grammar(grammar)
        return FakeSession(self)

    def _record_grammar(self, grammar: Sequence[str] | None) -> None:
        with self._lock:
            self.grammars.append(None if grammar is None else tuple(grammar))

    def _fed(self, n_bytes: int) -> None:
        with self._lock:
            self.bytes_fed += n_bytes

    def next_text(self) -> str:
        """The next scripted text ("" once the script is used up)."""
        with self._lock:
            return self._script.popleft() if self._script else ""


class FakeSession:
    """One call's scripted session: no partials; each ``finish()`` pops the next text."""

    def __init__(self, recognizer: FakeRecognizer) -> None:
        self._recognizer = recognizer

    def set_grammar(self, phrases: Sequence[str] | None) -> None:
        """Record the grammar switch (the script decides what is heard)."""
        self._recognizer._record_grammar(phrases)

    def accept(self, pcm16_8k: bytes) -> Transcript | None:
        """Count the audio; never a partial."""
        self._recognizer._fed(len(pcm16_8k))
        return None

    def finish(self) -> Transcript:
        """The next scripted text as a final transcript with full confidence."""
        text = self._recognizer.next_text()
        words = tuple(
            Word(text=w, start_ms=i * 300, end_ms=i * 300 + 250, confidence=1.0)
            for i, w in enumerate(text.split())
        )
        return Transcript(
            text=text,
            final=True,
            words=words,
            confidence=1.0 if words else 0.0,
            engine=ENGINE,
        )
