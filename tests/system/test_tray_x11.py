"""`edgeoss tray` on a real X11 desktop: Xvfb with a system tray host
(Debian's trayer). The icon must dock in the tray (an XEmbed client of
trayer's window); a screenshot is kept in test-artifacts/tray.png."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
TOOLS = ("Xvfb", "trayer", "xwininfo")


@pytest.fixture
def display(tmp_path: Path) -> Iterator[str]:
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"needs {', '.join(missing)} (Debian: xvfb trayer x11-utils)")
    # A display is free only when neither its socket nor its lock file is there: Xvfb refuses a
    # number whose lock a crashed server left behind.
    number = next(
        n for n in range(90, 140) if not Path(f"/tmp/.X11-unix/X{n}").exists() and not Path(f"/tmp/.X{n}-lock").exists()
    )
    name = f":{number}"
    xvfb_log = tmp_path / "xvfb.log"
    trayer_log = tmp_path / "trayer.log"
    with xvfb_log.open("wb") as xvfb_out:
        xvfb = subprocess.Popen(["Xvfb", name, "-screen", "0", "640x200x24", "-nolisten", "tcp"], stderr=xvfb_out)
    env = {**os.environ, "DISPLAY": name}
    try:
        deadline = time.monotonic() + 30
        while subprocess.run(["xwininfo", "-root"], env=env, capture_output=True).returncode != 0:
            assert xvfb.poll() is None and time.monotonic() < deadline, f"Xvfb did not start:\n{xvfb_log.read_text()}"
            time.sleep(0.1)
        with trayer_log.open("wb") as trayer_out:
            trayer = subprocess.Popen(
                ["trayer", "--edge", "top", "--align", "right", "--widthtype", "request", "--height", "32",
                 "--transparent", "false", "--tint", "0x303030"],
                env=env, stdout=trayer_out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        try:
            # The tray host must own its panel before the icon starts: on a loaded machine
            # trayer can take many seconds, and an icon that starts first measures the host's
            # start-up, not its own docking.
            deadline = time.monotonic() + 60
            while not re.search(r'^\s*0x[0-9a-f]+ "panel"', tree(env), re.M):
                assert trayer.poll() is None, f"trayer exited ({trayer.returncode}):\n{trayer_log.read_text()}"
                assert time.monotonic() < deadline, f"trayer showed no panel in 60 s:\n{trayer_log.read_text()}"
                time.sleep(0.2)
            yield name
        finally:
            trayer.terminate()
            trayer.wait(10)
    finally:
        xvfb.terminate()
        xvfb.wait(10)


def tree(env: dict[str, str]) -> str:
    return subprocess.run(["xwininfo", "-root", "-tree"], env=env, capture_output=True, text=True).stdout


def test_the_tray_icon_docks_in_a_system_tray(display: str, edgeoss_home: Path) -> None:
    if importlib.util.find_spec("pystray") is None:  # importing it here would need a display
        pytest.skip("pystray is not installed")
    env = {**os.environ, "DISPLAY": display, "PYSTRAY_BACKEND": "xorg", "EDGEOSS_HOME": str(edgeoss_home)}
    tray = subprocess.Popen(
        [sys.executable, "-m", "edgeoss", "tray", "--no-start"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 30
        docked = False
        while not docked:
            assert tray.poll() is None, tray.communicate()[1].decode()[-2000:]
            # trayer's panel window holds the icon's window once the XEmbed handshake is done.
            text = tree(env)
            panel = re.search(r"^(\s*)0x[0-9a-f]+ \"panel\".*$", text, re.M)
            if panel:
                indent = len(panel.group(1))
                below = [line for line in text[panel.end() :].splitlines() if line.strip()]
                inside = []
                for line in below:
                    if len(line) - len(line.lstrip()) <= indent:
                        break
                    inside.append(line)
                docked = any('"edgeossSystemTrayIcon"' in line for line in inside)  # pystray's window class
            assert docked or time.monotonic() < deadline, f"the icon never docked:\n{text}"
            time.sleep(0.3)
        from PIL import ImageGrab

        # The docked icon is the stopped state's grey square at the panel's right end. It is
        # painted on the first expose after docking, so look until it shows.
        deadline = time.monotonic() + 15
        while True:
            shot = ImageGrab.grab(xdisplay=display)
            corner = np.asarray(shot.convert("RGB").crop((shot.width - 40, 0, shot.width, 32)), dtype=int)
            painted = bool((np.abs(corner - 128) < 12).all(axis=-1).any())
            if painted or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        ARTIFACTS.mkdir(exist_ok=True)
        shot.save(ARTIFACTS / "tray.png")
        assert painted, "the icon docked but was never painted (see test-artifacts/tray.png)"
        tray.terminate()  # SIGTERM: the tray stops its loop and exits cleanly
        _, stderr = tray.communicate(timeout=15)
        assert tray.returncode == 0 and b"Traceback" not in stderr, stderr.decode()[-2000:]
    finally:
        if tray.poll() is None:
            tray.kill()
            tray.wait()
