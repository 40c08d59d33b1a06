"""One call: the session that wires transport, VAD, ASR, dialog, TTS and playout."""
