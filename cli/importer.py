"""`tessera import PATH...`: store files through the ingest service, with progress and a summary."""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from domain.runtime import Runtime
from domain.services.ingest import FailedInstance, IncomingFile
from domain.settings import Settings

BATCH = 50
NOT_DICOM = "not a DICOM Part-10 file"


def import_paths(settings: Settings, paths: list[Path]) -> int:
    missing = [p for p in paths if not p.exists()]
    if missing:
        Console(stderr=True).print(f"[red]No such file or folder:[/] {', '.join(map(str, missing))}")
        return 2
    return asyncio.run(_import(settings, sorted(set(_walk(paths)))))


def _walk(paths: list[Path]) -> Iterator[Path]:
    for path in paths:
        if path.is_file():
            yield path
        for root, _, names in os.walk(path):
            for name in names:
                yield Path(root) / name


async def _import(settings: Settings, files: list[Path]) -> int:
    console = Console(stderr=True)
    runtime = await Runtime.start(settings)
    counts: Counter[str] = Counter()
    failures: list[FailedInstance] = []
    try:
        columns = (TextColumn("importing"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
        with Progress(*columns, console=console) as progress:
            task = progress.add_task("import", total=len(files))
            for start in range(0, len(files), BATCH):
                batch = [IncomingFile(p, owned=False) for p in files[start : start + BATCH]]
                outcome = await runtime.ingest.store_instances(batch)
                for stored in outcome.stored:
                    counts["already present" if stored.already_present else "stored"] += 1
                for failed in outcome.failed:
                    if failed.message.startswith(NOT_DICOM):
                        counts["skipped (not DICOM)"] += 1
                    else:
                        counts["failed"] += 1
                        failures.append(failed)
                progress.advance(task, len(batch))
    finally:
        await runtime.stop()
    for failed in failures:
        where = failed.source or failed.sop_instance_uid
        console.print(f"[red]failed[/] {where}: {failed.message} ({int(failed.reason)})")
    summary = ", ".join(
        f"{counts[k]} {k}" for k in ("stored", "already present", "skipped (not DICOM)", "failed")
    )
    print(f"{len(files)} files: {summary}")
    return 1 if failures else 0
