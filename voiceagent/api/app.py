"""The HTTP application factory: JSON API under ``/api``, ``/metrics``, ``/health``, ``/docs``.

The dashboard (``voiceagent/api/dashboard/``) mounts its pages and static assets on the
same app, reusing :mod:`voiceagent.api.deps` for the session cookie and roles.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import Engine

from voiceagent import __version__
from voiceagent.api import errors
from voiceagent.api.auth import SessionSigner
from voiceagent.api.dashboard import pages as dashboard
from voiceagent.api.deps import ApiConfig, ApiState, Supervisor
from voiceagent.api.routes import (
    accounts,
    calls,
    campaigns,
    lists,
    payments,
    promises,
    recordings,
    session,
    users,
)
from voiceagent.api.routes import metrics as metric_routes
from voiceagent.api.webhooks import WebhookDispatcher
from voiceagent.config import Settings
from voiceagent.crm.db import make_engine, session_factory
from voiceagent.metrics import app_registry, loop_lag_exporter

PUBLIC_ROUTES = frozenset(
    {
        ("GET", "/health"),
        ("GET", "/openapi.json"),
        ("GET", "/docs"),
        ("GET", "/docs/oauth2-redirect"),
        ("GET", "/redoc"),
        *session.PUBLIC,
        *dashboard.PUBLIC,
    }
)
"""Routes without a role check (the role test fails on any other route without one)."""
ROUTERS = (
    session.router,
    users.router,
    accounts.router,
    lists.router,
    campaigns.router,
    calls.router,
    recordings.router,
    promises.router,
    payments.router,
    metric_routes.router,
    dashboard.router,
)


def create_app(
    settings: Settings,
    engine: Engine | None = None,
    *,
    config: ApiConfig | None = None,
    background: bool = True,
) -> FastAPI:
    """Build the app.

    Args:
        settings: Runtime settings (database URL, data dir, secrets).
        engine: CRM engine to use (default: one for ``settings.resolved_database_url()``).
        config: API settings (default: read from ``settings``).
        background: Run the loop-lag exporter and, when a webhook URL is set, the webhook
            dispatcher while the app is up.
    """
    api_config = config or ApiConfig.from_settings(settings)
    db = engine if engine is not None else make_engine(settings.resolved_database_url())
    sessions = session_factory(db)
    api = ApiState(
        config=api_config,
        engine=db,
        sessions=sessions,
        signer=SessionSigner(api_config.session_secret, api_config.session_max_age_s),
    )
    registry = app_registry(sessions)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            if background:
                await stack.enter_async_context(loop_lag_exporter())
                if api_config.webhook_url:
                    dispatcher = WebhookDispatcher(
                        sessions,
                        api_config.webhook_url,
                        api_config.webhook_secret,
                        api_config.data_dir / "webhooks.cursor.json",
                    )
                    task = asyncio.get_running_loop().create_task(dispatcher.run())
                    stack.push_async_callback(_cancel, task)
            yield
        if engine is None:
            db.dispose()

    app = FastAPI(
        title="voiceagent",
        version=__version__,
        lifespan=lifespan,
        description="Debt-collection voice agent: CRM, calls, recordings and metrics.",
    )
    app.state.api = api
    errors.install(app)
    for router in ROUTERS:
        app.include_router(router)

    @app.get("/health", tags=["ops"])
    def health() -> dict[str, str]:
        """Liveness: the process is up and serving."""
        return {"status": "ok", "version": __version__}

    @app.get("/metrics", tags=["ops"], response_class=Response)
    def prometheus(who: Supervisor, request: Request) -> Response:
        """Prometheus exposition (process metrics and today's CRM figures)."""
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return app


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
