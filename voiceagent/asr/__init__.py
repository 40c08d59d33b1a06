"""Speech recognition engines behind a small interface (shared model + per-call session)."""
