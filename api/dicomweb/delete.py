"""DELETE of a study, series or instance (Azure's extension to PS3.18): 204, or 404."""

from __future__ import annotations

from litestar import delete

from api.deps import PathStr, RuntimeDep
from api.dicomweb.urls import path_uids
from domain.services.delete import delete_instances


@delete("/studies/{study:str}", status_code=204)
async def delete_study(runtime: RuntimeDep, study: PathStr) -> None:
    await delete_instances(runtime.db, runtime.blobs, *path_uids(study, None, None))


@delete("/studies/{study:str}/series/{series:str}", status_code=204)
async def delete_series(runtime: RuntimeDep, study: PathStr, series: PathStr) -> None:
    await delete_instances(runtime.db, runtime.blobs, *path_uids(study, series, None))


@delete("/studies/{study:str}/series/{series:str}/instances/{instance:str}", status_code=204)
async def delete_instance(runtime: RuntimeDep, study: PathStr, series: PathStr, instance: PathStr) -> None:
    await delete_instances(runtime.db, runtime.blobs, *path_uids(study, series, instance))


ROUTES = [delete_study, delete_series, delete_instance]
