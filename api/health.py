"""GET /health/check: the index answers a query, or the service is unhealthy (503)."""

from __future__ import annotations

from typing import Any

from litestar import Response, get
from sqlalchemy import text

from api.deps import RuntimeDep


@get("/health/check")
async def health_check(runtime: RuntimeDep) -> Response[dict[str, Any]]:
    try:
        async with runtime.db.read() as conn:
            await conn.execute(text("SELECT 1"))
        status, description = "Healthy", "the index answers"
    except Exception as exc:  # the point of a health check is to report, not to raise
        status, description = "Unhealthy", f"the index does not answer: {exc}"
    body = {
        "overallStatus": status,
        "details": [{"name": "index", "status": status, "description": description}],
    }
    return Response(body, status_code=200 if status == "Healthy" else 503)
