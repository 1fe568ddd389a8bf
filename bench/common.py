"""Shared pieces: synthetic DICOM instances, servers started as processes, multipart, statistics."""

from __future__ import annotations

import atexit
import contextlib
import datetime as dt
import io
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filewriter import dcmwrite
from pydicom.uid import UID, ExplicitVRLittleEndian

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4"
US_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.6.1"
CR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.1"
DX_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.1.1"
SOP_CLASS = {
    "CT": CT_IMAGE_STORAGE,
    "MR": MR_IMAGE_STORAGE,
    "US": US_IMAGE_STORAGE,
    "CR": CR_IMAGE_STORAGE,
    "DX": DX_IMAGE_STORAGE,
}
UID_ROOT = "1.2.826.0.1.3680043.8.498."  # pydicom's root, with random suffixes
MB = 1_000_000


def new_uid() -> str:
    return UID_ROOT + str(uuid.uuid4().int)[:30]


# --------------------------------------------------------------------------------------------
# Synthetic instances
# --------------------------------------------------------------------------------------------


@dataclass
class StudyInfo:
    study_uid: str
    patient_id: str
    patient_name: str
    birth_date: str
    sex: str
    study_date: str
    accession: str
    description: str
    series: list[tuple[str, str, int]] = field(default_factory=list)  # (series_uid, modality, count)


def instance_bytes(
    study: StudyInfo,
    series_uid: str,
    modality: str,
    series_number: int,
    instance_number: int,
    pixels: np.ndarray,
    sop_uid: str | None = None,
) -> bytes:
    """One 16-bit MONOCHROME2 Part-10 instance, Explicit VR Little Endian."""
    sop_class = SOP_CLASS[modality]
    sop_uid = sop_uid or new_uid()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(sop_class)
    meta.MediaStorageSOPInstanceUID = UID(sop_uid)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = UID(UID_ROOT + "1")
    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = sop_uid
    ds.StudyDate = study.study_date
    ds.SeriesDate = study.study_date
    ds.StudyTime = "101500"
    ds.AccessionNumber = study.accession
    ds.Modality = modality
    ds.Manufacturer = "Tessera Bench"
    ds.ReferringPhysicianName = "Referrer^Alice"
    ds.StudyDescription = study.description
    ds.SeriesDescription = f"{modality} series {series_number}"
    ds.PatientName = study.patient_name
    ds.PatientID = study.patient_id
    ds.PatientBirthDate = study.birth_date
    ds.PatientSex = study.sex
    ds.BodyPartExamined = "CHEST"
    ds.StudyInstanceUID = study.study_uid
    ds.SeriesInstanceUID = series_uid
    ds.StudyID = study.accession[-6:]
    ds.SeriesNumber = series_number
    ds.InstanceNumber = instance_number
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = pixels.shape
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    ds.PixelData = pixels.tobytes()
    buffer = io.BytesIO()
    dcmwrite(buffer, ds, enforce_file_format=True)
    return buffer.getvalue()


def pixels(size: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 4096, size=(size, size), dtype=np.uint16)


def simple_instances(count: int, size: int, *, studies: int = 4, series_per_study: int = 2) -> list[bytes]:
    """`count` unique instances spread over a handful of studies and series (for STOW and WADO)."""
    pix = pixels(size)
    groups = studies * series_per_study
    shares = [count // groups + (1 if g < count % groups else 0) for g in range(groups)]
    out: list[bytes] = []
    for s in range(studies):
        info = StudyInfo(
            new_uid(), f"BENCH{s:04d}", f"Bench^Patient{s}", "19700101", "O", "20240101",
            f"ACC{uuid.uuid4().hex[:10]}", "bench study",
        )  # fmt: skip
        for n in range(series_per_study):
            share = shares[s * series_per_study + n]
            if share:
                out += series_instances(info, new_uid(), "CT" if n % 2 == 0 else "MR", n + 1, share, pix)
    random.Random(count).shuffle(out)
    return out


# --------------------------------------------------------------------------------------------
# Multipart
# --------------------------------------------------------------------------------------------

BOUNDARY = "tessera-bench-boundary-7d3f1c"
MULTIPART_TYPE = f'multipart/related; type="application/dicom"; boundary={BOUNDARY}'


def multipart_body(parts: Sequence[bytes]) -> bytes:
    head = f"--{BOUNDARY}\r\nContent-Type: application/dicom\r\n\r\n".encode()
    chunks: list[bytes] = []
    for part in parts:
        chunks += [head, part, b"\r\n"]
    chunks.append(f"--{BOUNDARY}--\r\n".encode())
    return b"".join(chunks)


def split_multipart(body: bytes, content_type: str) -> list[bytes]:
    """The parts of a multipart/related answer (enough to check a WADO answer)."""
    boundary = None
    for item in content_type.split(";"):
        name, _, value = item.strip().partition("=")
        if name.lower() == "boundary":
            boundary = value.strip('"')
    assert boundary, content_type
    parts = []
    for piece in body.split(b"--" + boundary.encode())[1:]:
        if piece.startswith(b"--"):
            break
        _, _, content = piece.partition(b"\r\n\r\n")
        parts.append(content[:-2] if content.endswith(b"\r\n") else content)
    return parts


# --------------------------------------------------------------------------------------------
# Servers
# --------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


_LIVE: list[Server] = []


def _stop_all() -> None:
    for server in list(_LIVE):
        server.stop()


atexit.register(_stop_all)


def _on_signal(signum: int, _frame: object) -> None:
    _stop_all()
    sys.exit(128 + signum)


signal.signal(signal.SIGTERM, _on_signal)


class Server:
    """A server process in its own process group, stopped by its PID."""

    name = "server"
    root = ""  # DICOMweb root URL
    process: subprocess.Popen[bytes] | None = None

    def __init__(self) -> None:
        self.port = free_port()
        self.tmp = Path(tempfile.mkdtemp(prefix=f"bench-{self.name}-"))
        self.log_path = self.tmp / "server.log"

    @property
    def label(self) -> str:
        return self.name

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return self.base + self.root

    def _command(self) -> tuple[list[str], dict[str, str]]:
        raise NotImplementedError

    def _ready(self, client: httpx.Client) -> bool:
        raise NotImplementedError

    def start(self, timeout: float = 60.0) -> Server:
        command, env = self._command()
        log = open(self.log_path, "wb")  # noqa: SIM115
        self.process = subprocess.Popen(
            command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=self.tmp, start_new_session=True
        )
        _LIVE.append(self)
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=2.0) as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(f"{self.name} exited: {self.log_tail()}")
                try:
                    if self._ready(client):
                        return self
                except httpx.HTTPError:
                    pass
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{self.name} did not start within {timeout} s: {self.log_tail()}")

    def log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-2000:]
        except OSError:
            return ""

    def check_alive(self) -> None:
        """Raise with the server's own log when its process has gone (crashed or killed)."""
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(
                f"{self.label} (pid {self.process.pid}) exited with {self.process.returncode}; "
                f"its log ends with:\n{self.log_tail()}"
            )

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)  # the server and its workers, by PID
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        if self in _LIVE:
            _LIVE.remove(self)
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def data_bytes(self) -> int:
        return sum(f.stat().st_size for f in self.tmp.rglob("*") if f.is_file())


class Tessera(Server):
    name = "tessera"
    root = "/v2"

    def __init__(self, workers: int = 1, fsync: bool = True) -> None:
        super().__init__()
        self.workers = workers
        self.fsync = fsync
        self.data_dir = self.tmp / "data"

    @property
    def label(self) -> str:
        return f"Tessera w{self.workers}" + ("" if self.fsync else " nofsync")

    def _command(self) -> tuple[list[str], dict[str, str]]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TESSERA_")}
        env["TESSERA_FSYNC"] = "1" if self.fsync else "0"
        command = [
            str(VENV_BIN / "tessera"), "serve", "--host", "127.0.0.1", "--port", str(self.port),
            "--data-dir", str(self.data_dir), "--workers", str(self.workers),
        ]  # fmt: skip
        return command, env

    def _ready(self, client: httpx.Client) -> bool:
        return client.get(self.base + "/health/check").status_code == 200


def orthanc_available() -> bool:
    return shutil.which("Orthanc") is not None and _dicomweb_plugin() is not None


def _dicomweb_plugin() -> str | None:
    for candidate in (
        "/usr/share/orthanc/plugins/libOrthancDicomWeb.so",
        "/usr/lib/orthanc/libOrthancDicomWeb.so",
    ):
        if os.path.exists(candidate):
            return candidate
    found = (
        sorted(Path("/usr/lib/orthanc").glob("libOrthancDicomWeb.so*"))
        if Path("/usr/lib/orthanc").exists()
        else []
    )
    return str(found[0]) if found else None


class Orthanc(Server):
    """Orthanc with the fair configuration of /work/shared/PEERS.md, in a private folder."""

    name = "orthanc"
    root = "/dicom-web"

    @property
    def label(self) -> str:
        return "Orthanc"

    def _command(self) -> tuple[list[str], dict[str, str]]:
        config = {
            "Name": "bench",
            "HttpPort": self.port,
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": False,
            "DicomServerEnabled": False,
            "StorageDirectory": str(self.tmp / "storage"),
            "IndexDirectory": str(self.tmp / "index"),
            "StorageCompression": False,
            "HttpCompressionEnabled": False,
            "KeepAlive": True,
            "TcpNoDelay": True,
            "HttpThreadsCount": 50,
            "StorageAccessOnFind": "Answers",
            "OrthancExplorerEnabled": False,
            "Plugins": [_dicomweb_plugin()],
            "DicomWeb": {
                "Enable": True,
                "Root": "/dicom-web/",
                "StudiesMetadata": "Full",
                "SeriesMetadata": "Full",
            },
        }
        path = self.tmp / "orthanc.json"
        path.write_text(json.dumps(config, indent=2))
        return ["Orthanc", str(path)], dict(os.environ)

    def _ready(self, client: httpx.Client) -> bool:
        return client.get(self.base + "/system").status_code == 200


# --------------------------------------------------------------------------------------------
# Clients and statistics
# --------------------------------------------------------------------------------------------


def client(parallel: int = 1, timeout: float = 120.0) -> httpx.Client:
    """The one client used against every server: keep-alive, no compression negotiation."""
    limits = httpx.Limits(max_connections=parallel, max_keepalive_connections=parallel)
    return httpx.Client(timeout=timeout, limits=limits, headers={"Accept-Encoding": "identity"})


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * q
    low = int(k)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (k - low)


def median(values: Iterable[float]) -> float:
    return statistics.median(list(values))


def ratio(value: float, baseline: float) -> str:
    if not baseline or baseline != baseline or value != value:
        return "n/a"
    return f"{value / baseline:.2f}"


def print_table(title: str, header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table (also readable on a terminal); printed and returned."""
    text_rows = [[str(c) for c in row] for row in rows]
    widths = [
        max(len(h), *(len(r[i]) for r in text_rows)) if text_rows else len(h) for i, h in enumerate(header)
    ]
    lines = [f"\n### {title}\n"]
    lines.append("| " + " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + " |")
    lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in text_rows:
        lines.append("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |")
    text = "\n".join(lines)
    print(text, flush=True)
    return text


def now_stamp() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------
# Fast generation: one pydicom write per series, then the UIDs and numbers patched in place
# --------------------------------------------------------------------------------------------

_SOP_PLACEHOLDER = (UID_ROOT + "9" * 30).encode()  # 56 characters, even, like every generated SOP UID
_INSTANCE_NUMBER = b"\x20\x00\x13\x00IS\x04\x00"  # (0020,0013) IS, 4 bytes, explicit VR LE


def series_instances(
    study: StudyInfo, series_uid: str, modality: str, series_number: int, count: int, pix: np.ndarray
) -> list[bytes]:
    """`count` instances of one series with unique SOPInstanceUIDs (56 characters each)."""
    template = instance_bytes(
        study, series_uid, modality, series_number, 1000, pix, sop_uid=_SOP_PLACEHOLDER.decode()
    )
    header_end = template.rfind(b"\xe0\x7f\x10\x00")  # the pixel data element
    sop_at = [
        template.find(_SOP_PLACEHOLDER),
        template.find(_SOP_PLACEHOLDER, template.find(_SOP_PLACEHOLDER) + 1),
    ]
    number_at = template.find(_INSTANCE_NUMBER) + len(_INSTANCE_NUMBER)
    assert 0 < sop_at[0] < sop_at[1] < header_end and 0 < number_at < header_end, "template layout"
    size = len(_SOP_PLACEHOLDER)
    out = []
    for i in range(count):
        data = bytearray(template)
        sop = (UID_ROOT + "1" + f"{uuid.uuid4().int % 10**29:029d}").encode()
        for at in sop_at:
            data[at : at + size] = sop
        data[number_at : number_at + 4] = f"{i + 1:04d}".encode()
        out.append(bytes(data))
    return out
