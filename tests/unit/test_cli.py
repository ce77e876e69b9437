"""The command line in process: version, folders, logs, the spec and synth commands
(`python -m edgeoss` as a process: tests/system/test_cli_process.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from edgeoss import __version__, spec
from edgeoss.cli import app

runner = CliRunner()


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"edgeoss {__version__}"
    assert __version__ != "0.0.0+unknown", "the package must be installed"


def test_paths_follow_edgeoss_home(edgeoss_home: Path) -> None:
    result = runner.invoke(app, ["paths", "--json"])
    assert result.exit_code == 0
    folders = json.loads(result.stdout)
    assert set(folders) == {"config", "cache", "data", "logs", "models"}
    for value in folders.values():
        assert Path(value).is_relative_to(edgeoss_home.resolve())


def test_every_command_logs_to_the_rotating_file(edgeoss_home: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["synth", str(tmp_path / "x"), "--layers", "1", "--experts", "4", "--json"])
    assert result.exit_code == 0, result.output
    log_file = edgeoss_home.resolve() / "data" / "logs" / "edgeoss.log"
    assert "writing synthetic-tiny-1l-4e" in log_file.read_text()


def test_spec_json_for_one_variant() -> None:
    result = runner.invoke(app, ["spec", "20b", "--json"])
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert list(data) == ["gpt-oss-20b"]
    assert data["gpt-oss-20b"]["total_params"] == spec.GPT_OSS_20B.total_params
    assert data["gpt-oss-20b"]["kv_cache_bytes_per_token_f16"] == 24 * 1024


def test_spec_table_and_unknown_variant() -> None:
    assert "gpt-oss-120b" in runner.invoke(app, ["spec"]).stdout
    result = runner.invoke(app, ["spec", "70b"])
    assert result.exit_code == 2
    assert "unknown variant" in result.output


def test_synth_json_result(tmp_path: Path) -> None:
    out = tmp_path / "ckpt"
    result = runner.invoke(
        app, ["synth", str(out), "--scale", "tiny", "--layers", "1", "--experts", "4", "--seed", "7", "--json"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["path"] == str(out.absolute()) and data["seed"] == 7 and data["shards"] == ["model.safetensors"]
    assert (out / "model.safetensors").stat().st_size > data["tensor_bytes"]


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--scale", "huge"], 2, "unknown scale"),
        (["--experts", "2"], 2, "experts_per_token"),
    ],
)
def test_synth_bad_arguments(tmp_path: Path, args: list[str], code: int, message: str) -> None:
    result = runner.invoke(app, ["synth", str(tmp_path / "x"), *args])
    assert result.exit_code == code
    assert message in result.output
    assert not (tmp_path / "x").exists()


def test_synth_refuses_a_folder_with_content(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("x")
    result = runner.invoke(app, ["synth", str(tmp_path)])
    assert result.exit_code == 2
    assert "already exists" in result.output and "--force" in result.output
