"""The background re-index: indexes existing instances for tags being added, in batches.

The database is the queue. A server process claims an operation with a conditional UPDATE
(not started, or running with an expired lease) and renews the lease with every batch; each
batch commits its values together with `last_instance_pk`, so after a restart or a crash the
operation continues after the last committed batch, and no instance is indexed twice. A
process that stops cleanly hands its operation back at once (lease 0).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import Connection, Select, or_, select, update

from domain.db import Database
from domain.model import Instance
from domain.services.extended_index import index_instances, stored_targets
from domain.services.extended_query_tags import ADDING, READY, TAGS, QueryTag
from domain.services.operations import OPERATIONS

log = logging.getLogger(__name__)
INSTANCES = Instance.__table__
NOT_STARTED, RUNNING, SUCCEEDED, FAILED = "notStarted", "running", "succeeded", "failed"


OperationRunner = Callable[[str, str, int], Awaitable[None]]  # (operation id, owner, lease ms)


def _now_ms() -> int:
    return int(time.time() * 1000)


class OperationWorker:
    """One per server process: claims long-running operations (re-index, and the types in
    `runners`, such as bulk update) and runs them a step at a time under a lease."""

    def __init__(
        self,
        db: Database,
        *,
        batch_size: int = 100,
        lease_seconds: float = 30,
        poll_seconds: float = 1,
        runners: dict[str, OperationRunner] | None = None,
    ):
        self.db = db
        self.runners = runners or {}  # other operation types, run under the same claim and lease
        self.batch_size = batch_size
        self.lease_ms = int(lease_seconds * 1000)
        self.poll_seconds = poll_seconds
        self.owner = uuid.uuid4().hex
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="tessera-operations")

    def wake(self) -> None:
        """An operation was just created: look now rather than at the next poll."""
        self._wake.set()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.db.write(_release, self.owner)

    async def _run(self) -> None:
        while True:
            operation_id = None
            try:
                operation_id = await self._claim_next()
                if operation_id is not None:
                    await self.run_operation(operation_id)
                    continue
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("re-index operation %s failed", operation_id)
                if operation_id is not None:
                    await self.db.write(_finish, operation_id, self.owner, FAILED)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_seconds)
            self._wake.clear()

    async def _claim_next(self) -> str | None:
        now = _now_ms()
        async with self.db.read() as conn:
            candidates = (
                await conn.scalars(_claimable(now, self.types).order_by(OPERATIONS.c.created_at).limit(5))
            ).all()
        for operation_id in candidates:
            if await self.db.write(_claim, operation_id, self.owner, now, self.lease_ms, self.types):
                return str(operation_id)
        return None

    @property
    def types(self) -> tuple[str, ...]:
        return ("reindex", *self.runners)

    async def run_operation(self, operation_id: str) -> None:
        """Batches until the operation is done, or another process has taken it over."""
        async with self.db.read() as conn:
            kind = await conn.scalar(select(OPERATIONS.c.type).where(OPERATIONS.c.id == operation_id))
        if kind in self.runners:
            await self.runners[kind](operation_id, self.owner, self.lease_ms)
            return
        while await self.db.write(reindex_batch, operation_id, self.owner, self.batch_size, self.lease_ms):
            await asyncio.sleep(0)


def _claimable(now_ms: int, types: tuple[str, ...]) -> Select[Any]:
    expired = (OPERATIONS.c.status == RUNNING) & (OPERATIONS.c.lease_until_ms < now_ms)
    return select(OPERATIONS.c.id).where(
        OPERATIONS.c.type.in_(types), or_(OPERATIONS.c.status == NOT_STARTED, expired)
    )


def _claim(
    conn: Connection, operation_id: str, owner: str, now_ms: int, lease_ms: int, types: tuple[str, ...]
) -> bool:
    claimable = _claimable(now_ms, types).where(OPERATIONS.c.id == operation_id).exists()
    result = conn.execute(
        update(OPERATIONS)
        .where(OPERATIONS.c.id == operation_id, claimable)
        .values(
            status=RUNNING, owner=owner, lease_until_ms=now_ms + lease_ms, updated_at=dt.datetime.now(dt.UTC)
        )
    )
    return result.rowcount == 1


def _release(conn: Connection, owner: str) -> None:
    conn.execute(
        update(OPERATIONS)
        .where(OPERATIONS.c.owner == owner, OPERATIONS.c.status == RUNNING)
        .values(owner=None, lease_until_ms=0)
    )


def reindex_batch(conn: Connection, operation_id: str, owner: str, batch_size: int, lease_ms: int) -> bool:
    """Index the next batch of instances; True while there is more to do."""
    renewed = conn.execute(
        update(OPERATIONS)
        .where(OPERATIONS.c.id == operation_id, OPERATIONS.c.owner == owner, OPERATIONS.c.status == RUNNING)
        .values(lease_until_ms=_now_ms() + lease_ms, updated_at=dt.datetime.now(dt.UTC))
    )
    if renewed.rowcount != 1:
        return False  # the lease expired and another process took the operation over
    last, processed, total = conn.execute(
        select(
            OPERATIONS.c.last_instance_pk, OPERATIONS.c.processed_instances, OPERATIONS.c.total_instances
        ).where(OPERATIONS.c.id == operation_id)
    ).one()
    tags = [
        QueryTag.of(row)
        for row in conn.execute(
            select(TAGS).where(TAGS.c.operation_id == operation_id, TAGS.c.status == ADDING)
        )
    ]
    targets = stored_targets(conn, INSTANCES.c.id > last, batch_size) if tags else []
    index_instances(conn, tags, targets)
    processed += len(targets)
    conn.execute(
        update(OPERATIONS)
        .where(OPERATIONS.c.id == operation_id)
        .values(
            last_instance_pk=targets[-1].instance_pk if targets else last,
            processed_instances=processed,
            percent_complete=min(99, processed * 100 // max(total, 1)),
        )
    )
    if len(targets) < batch_size:
        conn.execute(
            update(TAGS)
            .where(TAGS.c.operation_id == operation_id, TAGS.c.status == ADDING)
            .values(status=READY)
        )
        _finish(conn, operation_id, owner, SUCCEEDED)
        return False
    return True


def _finish(conn: Connection, operation_id: str, owner: str, status: str) -> None:
    values: dict[str, object] = {"status": status, "owner": None, "lease_until_ms": 0}
    if status == SUCCEEDED:
        values["percent_complete"] = 100
    conn.execute(
        update(OPERATIONS)
        .where(OPERATIONS.c.id == operation_id, OPERATIONS.c.owner == owner)
        .values(updated_at=dt.datetime.now(dt.UTC), **values)
    )
