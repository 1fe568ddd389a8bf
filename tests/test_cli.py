"""`tessera import` and `tessera --help`, run as a user runs them."""

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import dicom_file
from tests.dicom_factory import make_dataset

TESSERA = [sys.executable, "-m", "cli.main"]


def tessera(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*TESSERA, *args], capture_output=True, text=True, cwd=cwd, timeout=120)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_import_stores_a_folder_and_is_safe_to_run_again(tmp_path: Path) -> None:
    source = tmp_path / "in" / "nested"
    source.mkdir(parents=True)
    for name in ("CT_small.dcm", "MR_small.dcm", "rtplan.dcm"):
        shutil.copy(dicom_file(name), source / name)
    (source / "notes.txt").write_text("not an image")
    made = make_dataset()
    made.preamble = b"\xff" * 128  # a preamble with content: the original must keep it
    made.save_as(source / "made.dcm", enforce_file_format=True)
    before = {p: digest(p) for p in source.iterdir()}
    data = tmp_path / "data"

    first = tessera("import", "--data-dir", str(data), str(tmp_path / "in"), cwd=Path.cwd())
    assert first.returncode == 0, first.stderr
    assert "5 files: 4 stored, 0 already present, 1 skipped (not DICOM), 0 failed" in first.stdout

    again = tessera("import", "--data-dir", str(data), str(tmp_path / "in"), cwd=Path.cwd())
    assert again.returncode == 0, again.stderr
    assert "5 files: 0 stored, 4 already present, 1 skipped (not DICOM), 0 failed" in again.stdout
    assert {p: digest(p) for p in source.iterdir()} == before
    assert len(list((data / "blobs").rglob("*.dcm"))) == 4


def test_import_reports_each_failure_with_its_reason_and_exits_non_zero(tmp_path: Path) -> None:
    shutil.copy(dicom_file("MR_truncated.dcm"), tmp_path / "cut.dcm")
    result = tessera(
        "import", "--data-dir", str(tmp_path / "data"), str(tmp_path / "cut.dcm"), cwd=Path.cwd()
    )
    assert result.returncode == 1
    assert "cut.dcm" in result.stderr and "truncated" in result.stderr and "43264" in result.stderr
    assert "1 failed" in result.stdout


def test_import_names_a_path_that_does_not_exist(tmp_path: Path) -> None:
    result = tessera(
        "import", "--data-dir", str(tmp_path / "data"), str(tmp_path / "nowhere"), cwd=Path.cwd()
    )
    assert result.returncode == 2
    assert "No such file or folder" in result.stderr and "nowhere" in result.stderr


def test_help_explains_every_command_and_setting(tmp_path: Path) -> None:
    result = tessera("--help", cwd=Path.cwd())
    assert result.returncode == 0
    for word in ("serve", "import", "TESSERA_DATA_DIR", "TESSERA_DATABASE_URL", "TESSERA_MAX_REQUEST_BYTES"):
        assert word in result.stdout
    serve = tessera("serve", "--help", cwd=Path.cwd())
    for flag in ("--host", "--port", "--data-dir", "--workers"):
        assert flag in serve.stdout


def test_a_malformed_setting_stops_the_command_with_a_message(tmp_path: Path) -> None:
    result = subprocess.run(
        [*TESSERA, "import", str(tmp_path)],
        capture_output=True,
        text=True,
        env={"TESSERA_MAX_REQUEST_BYTES": "lots", "PATH": "/usr/bin"},
        timeout=60,
    )
    assert result.returncode == 2
    assert "TESSERA_MAX_REQUEST_BYTES must be a whole number" in result.stderr
