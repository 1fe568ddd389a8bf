"""`tessera`: serve the platform, import files. Settings come from flags and TESSERA_* variables."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from domain.settings import Settings

DESCRIPTION = """\
Tessera: an open imaging data platform (DICOMweb, GraphQL, FHIR sync, Parquet export).

Settings are read from TESSERA_* environment variables; flags override them:
  TESSERA_DATA_DIR           data folder (index.db, blobs/, spool/)   [./tessera-data]
  TESSERA_DATABASE_URL       postgresql://user@host:5432/db for scale-out [SQLite in the data dir]
  TESSERA_MAX_REQUEST_BYTES  largest request body accepted             [4 GiB]
  TESSERA_FSYNC              flush each stored file to disk (1/0)      [1]
"""


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        settings = _settings(args)
    except ValueError as exc:
        parser.error(str(exc))
    if args.command == "serve":
        from cli.serve import serve

        return serve(settings)
    if args.command == "import":
        from cli.importer import import_paths

        return import_paths(settings, [Path(p) for p in args.paths])
    parser.print_help()
    return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tessera", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-dir", help="data folder (TESSERA_DATA_DIR)")
    parser.add_argument("--database-url", help="index database URL (TESSERA_DATABASE_URL)")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    serve = commands.add_parser(
        "serve", help="run the DICOMweb server", description="Run the DICOMweb server."
    )
    serve.add_argument("--host", help="address to listen on [127.0.0.1]")
    serve.add_argument("--port", type=int, help="port to listen on [8080]")
    serve.add_argument("--workers", type=int, help="server processes sharing the index [1]")
    for sub in (serve,):
        sub.add_argument("--data-dir", dest="sub_data_dir", help="data folder [./tessera-data]")
        sub.add_argument(
            "--database-url", dest="sub_database_url", help="index database URL [SQLite in the data dir]"
        )

    importer = commands.add_parser(
        "import",
        help="store DICOM files from disk",
        description="Store every DICOM Part-10 file under PATH... through the same ingest as STOW-RS. "
        "Safe to re-run: files already stored are counted, not stored twice. Other files are skipped.",
    )
    importer.add_argument("paths", nargs="+", metavar="PATH", help="files or folders (walked recursively)")
    importer.add_argument("--data-dir", dest="sub_data_dir", help="data folder [./tessera-data]")
    importer.add_argument(
        "--database-url", dest="sub_database_url", help="index database URL [SQLite in the data dir]"
    )
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    env = dict(os.environ)
    data_dir = getattr(args, "sub_data_dir", None) or args.data_dir
    database_url = getattr(args, "sub_database_url", None) or args.database_url
    if data_dir:
        env["TESSERA_DATA_DIR"] = data_dir
    if database_url:
        env["TESSERA_DATABASE_URL"] = database_url
    for name in ("host", "port", "workers"):
        value = getattr(args, name, None)
        if value is not None:
            env[f"TESSERA_{name.upper()}"] = str(value)
    return Settings.from_env(env)


if __name__ == "__main__":
    sys.exit(main())
