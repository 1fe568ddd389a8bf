"""Long-running operations (re-index, bulk update): the table and how one is queued.

The OperationWorker (domain/services/reindex.py) claims queued operations and runs them.
"""

from __future__ import annotations

import datetime as dt
import json

from sqlalchemy import Connection, Table, insert

from domain.model import Operation

OPERATIONS: Table = Operation.__table__  # type: ignore[assignment]


def queue_operation(
    conn: Connection,
    operation_id: str,
    kind: str,
    resources: list[str],
    total: int,
    parameters: str | None = None,
) -> None:
    """A new operation, not started, for the worker of any server process to claim."""
    now = dt.datetime.now(dt.UTC)
    conn.execute(
        insert(OPERATIONS).values(
            id=operation_id,
            type=kind,
            status="notStarted",
            percent_complete=0,
            created_at=now,
            updated_at=now,
            resources=json.dumps(resources),
            parameters=parameters,
            total_instances=total,
            processed_instances=0,
            last_instance_pk=0,
            owner=None,
            lease_until_ms=0,
        )
    )
