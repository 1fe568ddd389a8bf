"""The domain's objects for one process, built from Settings by each entry point."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from domain.blobs import LocalBlobStore
from domain.db import Database
from domain.services.bulk_update import run_bulk_update
from domain.services.ingest import IngestService
from domain.services.reindex import OperationWorker
from domain.settings import Settings


@dataclass
class Runtime:
    settings: Settings
    db: Database
    blobs: LocalBlobStore
    ingest: IngestService
    operations: OperationWorker | None = field(default=None)

    @classmethod
    async def start(cls, settings: Settings) -> Runtime:
        """Create the data folders, bring the index schema up to date, start the re-index worker."""
        settings.spool_dir.mkdir(parents=True, exist_ok=True)
        _sweep_spool(settings.spool_dir)
        db = Database.from_settings(settings)
        await db.migrate()
        blobs = LocalBlobStore(settings.blob_dir, fsync=settings.fsync)
        runtime = cls(settings, db, blobs, IngestService(db, blobs, settings.spool_dir))
        runtime.operations = OperationWorker(
            db,
            batch_size=settings.reindex_batch,
            lease_seconds=settings.reindex_lease_seconds,
            runners={"update": partial(run_bulk_update, db, blobs, settings.spool_dir)},
        )
        runtime.operations.start()
        return runtime

    async def stop(self) -> None:
        if self.operations is not None:
            await self.operations.stop()
        await self.db.dispose()


STALE_SPOOL_SECONDS = 3600


def _sweep_spool(spool_dir: Path) -> None:
    """Uploads left behind by a crash are never referenced; other workers' live ones are young."""
    cutoff = time.time() - STALE_SPOOL_SECONDS
    for path in spool_dir.iterdir():
        try:
            if path.is_file() and path.stat().st_mtime < cutoff:
                path.unlink()
        except FileNotFoundError:
            pass
