"""QIDO-RS study searches: p50/p95 at growing index sizes, Tessera beside Orthanc, same corpus.

The corpus is synthetic but shaped like a real archive: patients with 1-3 studies, studies with
1-3 series of about 10 instances each, upper-case names from a list of common surnames, study
dates spread over 2015-2024, modalities CT/MR/US/CR/DX (a few studies mix two). Both servers are
filled with the same bytes by STOW-RS at the same time (batches of 50, 3 requests in flight to
each); Tessera runs with one worker and TESSERA_FSYNC=0, which changes nothing in how it searches.

Four study searches, each with varied values (the same list for both servers): PatientID, a
PatientName wildcard (`SMI*` every other search, else the first three letters of a surname),
a 30-day StudyDate range, and ModalitiesInStudy (US or CR, so no answer reaches Tessera's
1,000-result cap). Values carry no characters that need percent-encoding (Orthanc does not
percent-decode query values). The match counts of both servers are compared.

    python -m bench.qido [--quick] [--sizes 10000,100000] [--no-orthanc]
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import httpx

from bench.common import (
    MULTIPART_TYPE,
    UID_ROOT,
    Orthanc,
    Server,
    StudyInfo,
    Tessera,
    client,
    multipart_body,
    orthanc_available,
    percentile,
    pixels,
    print_table,
    ratio,
    say,
    series_instances,
)

SURNAMES = (
    "SMITH",
    "SMITHSON",
    "SMIRNOV",
    "SMILEY",
    "JOHNSON",
    "WILLIAMS",
    "BROWN",
    "JONES",
    "GARCIA",
    "MILLER",
    "DAVIS",
    "RODRIGUEZ",
    "MARTINEZ",
    "HERNANDEZ",
    "LOPEZ",
    "GONZALEZ",
    "WILSON",
    "ANDERSON",
    "THOMAS",
    "TAYLOR",
    "MOORE",
    "JACKSON",
    "MARTIN",
    "LEE",
    "PEREZ",
    "THOMPSON",
    "WHITE",
    "HARRIS",
    "SANCHEZ",
    "CLARK",
    "RAMIREZ",
    "LEWIS",
    "ROBINSON",
    "WALKER",
    "YOUNG",
    "ALLEN",
    "KING",
    "WRIGHT",
    "SCOTT",
    "TORRES",
    "NGUYEN",
    "HILL",
    "FLORES",
    "GREEN",
    "ADAMS",
    "NELSON",
    "BAKER",
    "HALL",
    "RIVERA",
    "CAMPBELL",
    "MITCHELL",
    "CARTER",
    "ROBERTS",
    "MUELLER",
    "SCHMIDT",
    "SCHNEIDER",
    "FISCHER",
    "WEBER",
    "MEYER",
    "WAGNER",
    "BECKER",
    "DUBOIS",
    "MOREAU",
    "LAURENT",
    "SIMON",
    "MICHEL",
    "ROSSI",
    "RUSSO",
    "FERRARI",
    "ESPOSITO",
    "BIANCHI",
    "ROMANO",
    "KOWALSKI",
    "NOWAK",
    "TANAKA",
    "SUZUKI",
    "SATO",
    "WATANABE",
    "KIM",
    "PARK",
    "CHOI",
    "SILVA",
    "SANTOS",
    "OLIVEIRA",
    "PEREIRA",
    "COSTA",
)
GIVEN = (
    "JAMES",
    "MARY",
    "ROBERT",
    "PATRICIA",
    "JOHN",
    "JENNIFER",
    "MICHAEL",
    "LINDA",
    "DAVID",
    "ELIZABETH",
    "WILLIAM",
    "BARBARA",
    "RICHARD",
    "SUSAN",
    "JOSEPH",
    "JESSICA",
    "THOMAS",
    "SARAH",
    "CHARLES",
    "KAREN",
    "ANNA",
    "LUCAS",
    "EMMA",
    "NOAH",
    "OLIVIA",
    "LIAM",
    "SOPHIA",
    "HUGO",
    "CHLOE",
    "LEON",
    "MIA",
    "PAUL",
    "LENA",
    "YUKI",
    "HANA",
    "MIN",
    "JOAO",
    "ANA",
    "PIOTR",
    "EWA",
)
MODALITIES = ("CT", "MR", "CR", "DX", "US")
MODALITY_WEIGHTS = (0.34, 0.28, 0.12, 0.16, 0.10)
FIRST_DAY = dt.date(2015, 1, 1)
DAYS = (dt.date(2024, 12, 31) - FIRST_DAY).days
KINDS = ("PatientID", "PatientName prefix*", "StudyDate 30 days", "ModalitiesInStudy")


@dataclass
class Corpus:
    """A deterministic stream of studies; `patients` and `studies` record what was made."""

    seed: int = 7
    rng: random.Random = field(init=False)
    patients: list[tuple[str, str, str, str]] = field(default_factory=list)  # id, name, birth, sex
    studies: list[StudyInfo] = field(default_factory=list)
    instances: int = 0

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.pix = pixels(32, self.seed)

    def _patient(self) -> tuple[str, str, str, str]:
        if self.patients and self.rng.random() < 0.45:  # a returning patient
            return self.rng.choice(self.patients)
        n = len(self.patients)
        birth = FIRST_DAY - dt.timedelta(days=self.rng.randint(365 * 2, 365 * 90))
        patient = (
            f"PID{n:07d}",
            f"{self.rng.choice(SURNAMES)}^{self.rng.choice(GIVEN)}",
            birth.strftime("%Y%m%d"),
            self.rng.choice("MF"),
        )
        self.patients.append(patient)
        return patient

    def study(self) -> tuple[StudyInfo, list[bytes]]:
        rng = self.rng
        pid, name, birth, sex = self._patient()
        n = len(self.studies)
        date = FIRST_DAY + dt.timedelta(days=rng.randint(0, DAYS))
        modality = rng.choices(MODALITIES, MODALITY_WEIGHTS)[0]
        info = StudyInfo(
            f"{UID_ROOT}{self.seed}.1.{n}", pid, name, birth, sex, date.strftime("%Y%m%d"),
            f"A{self.seed}{n:08d}", f"{modality} examination",
        )  # fmt: skip
        data: list[bytes] = []
        for s in range(rng.choices((1, 2, 3), (0.5, 0.3, 0.2))[0]):
            series_modality = modality if s == 0 or rng.random() > 0.15 else rng.choice(MODALITIES)
            series_uid = f"{UID_ROOT}{self.seed}.2.{n}.{s + 1}"
            count = rng.randint(8, 12)
            info.series.append((series_uid, series_modality, count))
            data += series_instances(info, series_uid, series_modality, s + 1, count, self.pix)
        self.studies.append(info)
        self.instances += len(data)
        return info, data

    def until(self, total: int, chunk: int = 2000) -> Iterator[list[bytes]]:
        """Chunks of instances until the corpus holds `total`."""
        pending: list[bytes] = []
        while self.instances < total:
            pending += self.study()[1]
            if len(pending) >= chunk:
                yield pending
                pending = []
        if pending:
            yield pending

    def queries(self, kind: str, count: int, seed: int) -> list[str]:
        """`count` query strings of one kind, the same for every server."""
        rng = random.Random(seed)
        out = []
        for i in range(count):
            if kind == "PatientID":
                out.append(f"PatientID={rng.choice(self.studies).patient_id}")
            elif kind.startswith("PatientName"):
                prefix = "SMI" if i % 2 == 0 else rng.choice(SURNAMES)[:3]
                out.append(f"PatientName={prefix}*")
            elif kind.startswith("StudyDate"):
                start = FIRST_DAY + dt.timedelta(days=rng.randint(0, DAYS - 30))
                end = start + dt.timedelta(days=29)
                out.append(f"StudyDate={start:%Y%m%d}-{end:%Y%m%d}")
            else:
                out.append(f"ModalitiesInStudy={('US', 'CR')[i % 2]}")
        return out


def fill(server: Server, chunk: Sequence[bytes], batch: int = 50, parallel: int = 3) -> float:
    """STOW the chunk; returns the seconds it took."""
    headers = {"Content-Type": MULTIPART_TYPE, "Accept": "application/dicom+json"}
    url = server.url + "/studies"
    bodies = [multipart_body(chunk[i : i + batch]) for i in range(0, len(chunk), batch)]
    with client(parallel, timeout=300) as http:

        def post(body: bytes) -> None:
            try:
                response = http.post(url, content=body, headers=headers)
            except httpx.HTTPError:
                server.check_alive()
                raise
            if response.status_code != 200:
                raise RuntimeError(f"{server.label}: STOW {response.status_code}: {response.text[:300]}")

        start = time.perf_counter()
        with ThreadPoolExecutor(parallel) as pool:
            list(pool.map(post, bodies))
        return time.perf_counter() - start


@dataclass
class Latency:
    server: str
    size: int
    kind: str
    seconds: list[float]
    matches: list[int]

    @property
    def p50(self) -> float:
        return percentile(self.seconds, 0.5) * 1000

    @property
    def p95(self) -> float:
        return percentile(self.seconds, 0.95) * 1000


def measure(server: Server, queries: list[str], budget: float) -> tuple[list[float], list[int]]:
    """Sequential searches (one in flight), bounded by the query list and a time budget."""
    url = server.url + "/studies?"
    seconds: list[float] = []
    matches: list[int] = []
    with client(1) as http:
        for query in queries[:3]:  # warm-up, not counted
            http.get(url + query, headers={"Accept": "application/dicom+json"})
        deadline = time.monotonic() + budget
        for query in queries:
            start = time.perf_counter()
            response = http.get(url + query, headers={"Accept": "application/dicom+json"})
            elapsed = time.perf_counter() - start
            if response.status_code not in (200, 204):
                raise RuntimeError(f"{server.label} {query}: {response.status_code} {response.text[:300]}")
            seconds.append(elapsed)
            matches.append(len(response.json()) if response.status_code == 200 and response.content else 0)
            if time.monotonic() > deadline and len(seconds) >= 10:
                break
    return seconds, matches


def run(
    sizes: Sequence[int] = (10_000, 100_000),
    with_orthanc: bool = True,
    queries_per_kind: int = 60,
    budget: float = 12.0,
) -> list[str]:
    servers: list[Server] = [Tessera(workers=1, fsync=False)]
    if with_orthanc and orthanc_available():
        servers.append(Orthanc())
    elif with_orthanc:
        say("Orthanc is not installed (apt-get install -y orthanc orthanc-dicomweb): skipped")
    corpus = Corpus()
    results: list[Latency] = []
    fill_seconds = {s.label: 0.0 for s in servers}
    mismatches: list[str] = []
    try:
        for server in servers:
            server.start()
        for size in sizes:
            say(f"filling to {size} instances")
            with ThreadPoolExecutor(len(servers)) as fillers:  # both servers fill at once
                for chunk in corpus.until(size):
                    for server, seconds in zip(
                        servers, fillers.map(lambda s, c=chunk: fill(s, c), servers), strict=True
                    ):
                        fill_seconds[server.label] += seconds
            say(
                f"{corpus.instances} instances, {len(corpus.studies)} studies, "
                f"{len(corpus.patients)} patients; fill rate "
                + ", ".join(f"{k} {corpus.instances / v:.0f}/s" for k, v in fill_seconds.items())
            )
            for k, kind in enumerate(KINDS):
                queries = corpus.queries(kind, queries_per_kind, seed=size + k)
                answers: dict[str, list[int]] = {}
                for server in servers:
                    timings, matches = measure(server, queries, budget)
                    latency = Latency(server.label, size, kind, timings, matches)
                    results.append(latency)
                    answers[server.label] = matches
                    say(
                        f"{server.label} {size} {kind}: p50 {latency.p50:.1f} ms, p95 {latency.p95:.1f} ms "
                        f"({len(timings)} searches, {sum(matches) / len(matches):.0f} matches on average)"
                    )
                lists = list(answers.values())
                for other in lists[1:]:
                    common = min(len(other), len(lists[0]))
                    if other[:common] != lists[0][:common]:
                        mismatches.append(f"{size} {kind}: match counts differ between servers")
    finally:
        for server in servers:
            server.stop()
    shape = f"{corpus.instances} instances, {len(corpus.studies)} studies, {len(corpus.patients)} patients"
    notes = [
        f"corpus: {shape}; fill rate (STOW, batches of 50, 3 in flight): "
        + ", ".join(f"{k} {corpus.instances / v:.0f} instances/s" for k, v in fill_seconds.items())
    ]
    notes += mismatches or ["the same searches returned the same number of studies on both servers"]
    for note in notes:
        print(note)
    return [table(results), *notes]


def table(results: list[Latency]) -> str:
    orthanc = {(r.size, r.kind): r for r in results if r.server == "Orthanc"}
    rows = []
    for r in results:
        if r.server == "Orthanc":
            continue
        peer = orthanc.get((r.size, r.kind))
        rows.append(
            [
                f"{r.size:,}", r.kind, f"{sum(r.matches) / len(r.matches):.0f}",
                f"{r.p50:.1f}", f"{r.p95:.1f}",
                f"{peer.p50:.1f}" if peer else "-", f"{peer.p95:.1f}" if peer else "-",
                ratio(r.p50, peer.p50) if peer else "n/a", ratio(r.p95, peer.p95) if peer else "n/a",
            ]
        )  # fmt: skip
    header = [
        "instances", "study search", "matches", "Tessera p50 ms", "p95 ms", "Orthanc p50 ms",
        "p95 ms", "p50 x Orthanc", "p95 x Orthanc",
    ]  # fmt: skip
    return print_table("QIDO-RS study searches (latency; ratio < 1 means Tessera is faster)", header, rows)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="a smoke run at 2,000 instances")
    parser.add_argument("--sizes", default="10000,100000", help="index sizes, comma-separated")
    parser.add_argument("--no-orthanc", action="store_true", help="leave Orthanc out")
    args = parser.parse_args(argv)
    sizes = (2000,) if args.quick else tuple(int(s) for s in args.sizes.split(","))
    run(sizes, not args.no_orthanc, 20 if args.quick else 60, 4.0 if args.quick else 12.0)


if __name__ == "__main__":
    main()
