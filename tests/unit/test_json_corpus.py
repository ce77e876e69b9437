"""Every JSON file edgeoss reads from outside (a checkpoint's config.json, an
ONNX folder's genai_config.json, a store or bundle manifest, the tray's
settings, a saved hardware report) is bounded before it is parsed: a file
too large, nested past the parser's stack, not UTF-8, or not an object ends
in that reader's own failure, at once, and never in a RecursionError."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from edgeoss import errors, fsutil
from edgeoss.desktop.settings import TraySettings
from edgeoss.discover.hardware import HardwareReport
from edgeoss.weights import importer
from edgeoss.weights.checkpoint import open_checkpoint
from edgeoss.weights.onnx import checks as onnx_checks
from edgeoss.weights.store import MANIFEST, Store
from onnx_layout import onnx_layout_double

TIME_LIMIT_S = 2.0


def _huge(path: Path) -> None:
    with path.open("wb") as fh:  # sparse: no disk is used for the claimed size
        fh.truncate(fsutil.MAX_JSON_FILE + 1)


BAD: dict[str, Callable[[Path], None]] = {
    "deep": lambda p: p.write_text("[" * 200_000 + "]" * 200_000),
    "not-utf8": lambda p: p.write_bytes(b'{"a": "\xff\xfe"}'),
    "not-json": lambda p: p.write_text("{model: gpt-oss"),
    "not-an-object": lambda p: p.write_text("[1, 2, 3]"),
    "empty": lambda p: p.write_text(""),
    "huge": _huge,
}


def _timed(call: Callable[[], object]) -> None:
    started = time.monotonic()
    call()
    assert time.monotonic() - started < TIME_LIMIT_S


@pytest.mark.parametrize("damage", list(BAD))
def test_a_checkpoint_config(tiny_checkpoint: Path, tmp_path: Path, damage: str) -> None:
    folder = tmp_path / "ckpt"
    folder.mkdir()
    for item in tiny_checkpoint.iterdir():
        (folder / item.name).symlink_to(item)
    (folder / "config.json").unlink()
    BAD[damage](folder / "config.json")

    def call() -> None:
        with pytest.raises(errors.CheckpointError):
            open_checkpoint(folder)

    _timed(call)


@pytest.mark.parametrize("damage", list(BAD))
def test_an_onnx_genai_config(tmp_path: Path, damage: str) -> None:
    folder = onnx_layout_double(tmp_path / "cpu")
    BAD[damage](folder / onnx_checks.CONFIG_FILE)

    def call() -> None:
        report = onnx_checks.verify(folder)
        assert not report.ok and report.exit_code in (
            errors.StructureError.exit_code,
            errors.SpecMismatchError.exit_code,
        )

    _timed(call)


@pytest.mark.parametrize("damage", list(BAD))
def test_a_store_manifest_is_skipped_and_the_rest_listed(tmp_path: Path, damage: str) -> None:
    importer.import_path(onnx_layout_double(tmp_path / "a"), name="good")
    importer.import_path(onnx_layout_double(tmp_path / "b"), name="bad")
    BAD[damage](Store().folder("bad") / MANIFEST)
    _timed(lambda: assert_names(Store().list(), ["good"]))


def assert_names(manifests: list[object], names: list[str]) -> None:
    assert [m.name for m in manifests] == names  # type: ignore[attr-defined]


@pytest.mark.parametrize("damage", list(BAD))
def test_a_bundled_manifest(tmp_path: Path, damage: str) -> None:
    importer.import_path(onnx_layout_double(tmp_path / "src"), name="m")
    copy = tmp_path / "stick" / "m"
    shutil.copytree(Store().folder("m"), copy)
    BAD[damage](copy / MANIFEST)

    def call() -> None:
        with pytest.raises(errors.FileAccessError, match="not a readable edgeoss manifest"):
            importer.import_path(copy, name="again")

    _timed(call)


@pytest.mark.parametrize("damage", list(BAD))
def test_the_tray_settings_fall_back_to_defaults(damage: str) -> None:
    TraySettings.file().parent.mkdir(parents=True, exist_ok=True)
    BAD[damage](TraySettings.file())
    _timed(lambda: TraySettings.load())
    assert TraySettings.load().effort == "medium"


@pytest.mark.parametrize("damage", list(BAD))
def test_a_saved_hardware_report(tmp_path: Path, damage: str) -> None:
    path = tmp_path / "report.json"
    BAD[damage](path)

    def call() -> None:
        with pytest.raises(errors.UsageError, match="not a hardware report"):
            HardwareReport.load(path)

    _timed(call)
