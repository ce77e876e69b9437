"""What `edgeoss serve` serves when no model is named: the planned variant pulled
with --yes (from a local imitation of the Hub), or the demo model when the user
declines or is offline (which builds the demo model)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def laptop(monkeypatch: pytest.MonkeyPatch) -> None:
    """Plan as for a desktop with a 12 GB RTX 3060 (gpt-oss-20b)."""
    from edgeoss.discover import probe
    from hardware_profiles import load_profile, report_from_profile

    monkeypatch.setattr(probe, "probe", lambda **_: report_from_profile(load_profile("desktop-rtx3060-12gb")))


def test_yes_pulls_the_planned_variant(
    laptop: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, tiny_gguf: Path
) -> None:
    from edgeoss.server import launch as serve
    from fake_hub import FakeHub, isolate_huggingface_hub, skip_retry_sleeps

    isolate_huggingface_hub(monkeypatch, tmp_path / "hf-home")
    skip_retry_sleeps(monkeypatch)
    asked: list[str] = []
    with FakeHub() as hub:
        hub.patch_huggingface_hub(monkeypatch)
        hub.add_file("ggml-org/gpt-oss-20b-GGUF", "gpt-oss-20b-mxfp4.gguf", tiny_gguf.read_bytes())
        chosen = serve.choose_model(serve.ServeRequest(yes=True), ask=lambda q: asked.append(q) or False)
    assert chosen.name == "gpt-oss-20b" and not chosen.is_demo and asked == []


def test_declined_or_offline_it_serves_the_demo(laptop: None, monkeypatch: pytest.MonkeyPatch) -> None:
    from edgeoss.server import launch as serve

    asked: list[str] = []
    chosen = serve.choose_model(serve.ServeRequest(), ask=lambda q: asked.append(q) or False)
    assert chosen.is_demo and chosen.name == "demo"
    [question] = asked
    assert "gpt-oss-20b" in question and " GB)" in question  # the size, before anything is downloaded
