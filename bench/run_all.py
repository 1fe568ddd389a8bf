"""Run every benchmark and print one results table per benchmark (`make bench`).

    python -m bench.run_all [--quick] [--no-orthanc] [--only stow,qido,...,changefeed,reindex] [--out FILE]

Default sizes take about 10-15 minutes on a 2-core machine; `--quick` is a smoke run of about
one minute. Every figure comes with a ratio to a baseline measured in the same run.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import sys
import time
from collections.abc import Sequence

from bench import changefeed, frames, qido, reindex, render, stow, wado
from bench.common import now_stamp, orthanc_available, say


def machine() -> str:
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as fp:
            for line in fp:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    system = f"{platform.system()} {platform.release()}"
    return f"{os.cpu_count()} cores ({model}), {system}, Python {platform.python_version()}"


def run_one(
    name: str, quick: bool, with_orthanc: bool, qido_sizes: str, parser: argparse.ArgumentParser
) -> list[str]:
    if name == "stow":
        return stow.run(quick, with_orthanc)
    if name == "qido":
        sizes = (2000,) if quick else tuple(int(s) for s in qido_sizes.split(","))
        return qido.run(sizes, with_orthanc, 20 if quick else 60, 4.0 if quick else 12.0)
    if name == "wado":
        return wado.run(quick, with_orthanc)
    if name == "frames":
        return frames.run(quick)
    if name == "render":
        return render.run(quick)
    if name == "changefeed":
        return changefeed.run(quick)
    if name == "reindex":
        return reindex.run(quick)
    parser.error(f"unknown benchmark {name!r}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    parser.add_argument("--no-orthanc", action="store_true", help="leave Orthanc out")
    parser.add_argument(
        "--only",
        default="stow,qido,wado,frames,render,changefeed,reindex",
        help="which benchmarks, comma-separated",
    )
    parser.add_argument("--qido-sizes", default="10000,100000", help="QIDO index sizes (full run)")
    parser.add_argument("--out", help="also write the results (Markdown) to this file")
    args = parser.parse_args(argv)
    with_orthanc = not args.no_orthanc
    if with_orthanc and not orthanc_available():
        say("Orthanc is not installed: apt-get install -y orthanc orthanc-dicomweb; running without it")
    chosen = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = set(chosen) - {"stow", "qido", "wado", "frames", "render", "changefeed", "reindex"}
    if unknown:
        parser.error(
            f"unknown benchmark(s): {', '.join(sorted(unknown))}; "
            "choose from stow, qido, wado, frames, render, changefeed, reindex"
        )
    sections: list[str] = [
        f"## Tessera benchmarks, {now_stamp()}{' (quick)' if args.quick else ''}",
        f"Machine: {machine()}",
    ]
    started = time.monotonic()
    for name in chosen:
        say(f"--- {name} ---")
        t = time.monotonic()
        with contextlib.redirect_stdout(sys.stderr):  # progress to stderr; the tables come at the end
            sections += run_one(name, args.quick, with_orthanc, args.qido_sizes, parser)
        say(f"{name} took {time.monotonic() - t:.0f} s")
    sections.append(f"Total time: {time.monotonic() - started:.0f} s")
    report = "\n\n".join(s.strip("\n") for s in sections) + "\n"
    print(report)
    if args.out:
        with open(args.out, "w") as fp:
            fp.write(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
