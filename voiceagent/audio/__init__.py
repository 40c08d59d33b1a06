"""Audio primitives: pure functions and dataclasses, no I/O except the WAV recorder."""
