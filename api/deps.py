"""What route handlers are given: the process's Runtime, and path parameters."""

from litestar.di import NamedDependency
from litestar.params import FromPath

from domain.runtime import Runtime

RuntimeDep = NamedDependency[Runtime]
PathStr = FromPath[str]
