"""The HTTP application factory (health check for now; the API grows here)."""

from __future__ import annotations

from fastapi import FastAPI

from voiceagent import __version__
from voiceagent.config import Settings


def create_app(settings: Settings) -> FastAPI:
    """Build the FastAPI app for the given settings."""
    app = FastAPI(title="voiceagent", version=__version__)

    @app.get("/health")
    def health() -> dict[str, str]:
        """Liveness: the process is up and serving."""
        return {"status": "ok", "version": __version__}

    return app
