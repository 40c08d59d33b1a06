from __future__ import annotations

from voiceagent.audio.format import BYTES_PER_FRAME, SILENCE_FRAME
from voiceagent.call.backchannel import is_backchannel
from voiceagent.call.playout import Playout, Segment


def test_frames_out_one_per_tick_and_flush() -> None:
    p = Playout(max_frames=10)
    seg = Segment("p", 0, True)
    assert p.push(b"\1\0" * 160 * 3 + b"\1\0" * 10, seg)
    p.end_segment(seg)
    assert p.queued_ms == 80
    assert p.next_frame() == b"\1\0" * 160
    assert p.current == seg
    assert p.flush() == seg
    assert not p.busy and p.next_frame() == SILENCE_FRAME and p.current is None


def test_bounded() -> None:
    p = Playout(max_frames=2)
    assert not p.push(bytes(BYTES_PER_FRAME * 3))
    assert p.push(bytes(BYTES_PER_FRAME * 2))


def test_backchannels() -> None:
    assert is_backchannel("ajá", "es-419")
    assert is_backchannel("Sí, sí", "es-419")
    assert is_backchannel("mhm", "en-US")
    assert is_backchannel("uh-huh", "en-US")
    assert is_backchannel("tá", "pt-BR") and is_backchannel("uhum", "pt-BR")
    assert not is_backchannel("sí, pero ya pagué", "es-419")
    assert not is_backchannel("no", "es-419")
    assert not is_backchannel("", "en-US")
