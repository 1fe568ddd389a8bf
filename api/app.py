"""create_app(settings) -> Litestar: the only place that wires everything together."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar, Router
from litestar.datastructures import State
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig

from api.dicomweb import bulk_update, changefeed, delete, extended_query_tags, metadata, qido, stow, wado
from api.dicomweb import frames as frames_routes
from api.dicomweb import rendered as rendered_routes
from api.dicomweb.urls import VERSION_PREFIX
from api.health import health_check
from api.problems import EXCEPTION_HANDLERS
from domain.runtime import Runtime
from domain.settings import Settings


def create_app(settings: Settings) -> Litestar:
    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        app.state.runtime = await Runtime.start(settings)
        try:
            yield
        finally:
            await app.state.runtime.stop()

    dicomweb = Router(
        path=VERSION_PREFIX,
        route_handlers=[
            stow.store_instances,
            stow.store_instances_in_study,
            *bulk_update.ROUTES,
            *qido.ROUTES,
            *wado.ROUTES,
            *metadata.ROUTES,
            *frames_routes.ROUTES,
            *rendered_routes.ROUTES,
            *delete.ROUTES,
            *changefeed.ROUTES,
            *extended_query_tags.ROUTES,
        ],
        tags=["DICOMweb"],
    )
    return Litestar(
        route_handlers=[dicomweb, health_check],
        dependencies={"runtime": Provide(_runtime, sync_to_thread=False)},
        exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]
        lifespan=[lifespan],
        request_max_body_size=settings.max_request_bytes,
        openapi_config=OpenAPIConfig(title="Tessera", version="0.1.0", path="/openapi"),
        signature_namespace={"Runtime": Runtime},
    )


def _runtime(state: State) -> Runtime:
    runtime: Runtime = state.runtime
    return runtime


def create_app_from_env() -> Litestar:
    """Factory for `uvicorn --factory`, used by each worker process of `tessera serve`."""
    return create_app(Settings.from_env())
