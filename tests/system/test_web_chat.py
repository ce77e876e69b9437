"""The built-in web chat in headless Chromium (Debian's chromium, driven by
Playwright), against the real server on a synthetic model. A screenshot is
kept in test-artifacts/web-chat.png."""

from __future__ import annotations

import base64
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import needs_llama
from edgeoss.tools import sandbox
from server_process import running_server

needs_llama.llama_cpp()
sync_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH (apt-get install chromium)")

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
SCRIPT = (
    "<|channel|>analysis<|message|>The user says hello; answer warmly.<|end|>"
    "<|start|>assistant<|channel|>final<|message|>Hello from the web chat!<|return|>"
)


@pytest.fixture(scope="module")
def server(tiny_gguf: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    log = tmp_path_factory.mktemp("web") / "server.log"
    tools = ["--tools", "python", "--tool-timeout", "10"] if sandbox.status().available else []
    with running_server(tiny_gguf, "--parallel", "2", *tools, log=log) as url:
        yield url


@pytest.fixture()
def page(server: str) -> Iterator[object]:
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        context = browser.new_context(viewport={"width": 1100, "height": 700})
        page = context.new_page()
        page.set_default_timeout(30_000)
        yield page
        browser.close()


def scripted(page: object, script: str) -> None:
    """Steer the next chat requests with a forced script (the test server's header)."""

    def add_header(route: object) -> None:
        headers = {**route.request.headers, "x-test-script": base64.b64encode(script.encode()).decode()}  # type: ignore[attr-defined]
        route.continue_(headers=headers)  # type: ignore[attr-defined]

    page.route("**/v1/chat/completions", add_header)  # type: ignore[attr-defined]


def test_chat_streams_the_answer_with_reasoning_folded(server: str, page: object) -> None:
    p = page
    scripted(p, SCRIPT)
    p.goto(server + "/")  # type: ignore[attr-defined]
    sync_api.expect(p.locator("#model-name")).to_have_text("synthetic")  # type: ignore[attr-defined]
    sync_api.expect(p.locator("#backend")).to_contain_text("llama.cpp")  # type: ignore[attr-defined]
    sync_api.expect(p.locator("#demo-banner")).to_be_visible()  # type: ignore[attr-defined]
    p.select_option("#effort", "high")  # type: ignore[attr-defined]
    p.fill("#prompt", "Hello!")  # type: ignore[attr-defined]
    p.press("#prompt", "Enter")  # type: ignore[attr-defined]
    answer = p.locator(".message.assistant .answer").last  # type: ignore[attr-defined]
    sync_api.expect(answer).to_have_text("Hello from the web chat!")
    reasoning = p.locator(".message.assistant details.reasoning").last  # type: ignore[attr-defined]
    sync_api.expect(reasoning).to_be_visible()
    assert reasoning.get_attribute("open") is None  # folded until the user opens it
    assert "answer warmly" not in answer.inner_text()  # the reasoning never reaches the answer
    sync_api.expect(p.locator(".message.assistant .meta").last).to_contain_text("tokens/s")  # type: ignore[attr-defined]
    reasoning.locator("summary").click()
    sync_api.expect(reasoning.locator(".text")).to_have_text("The user says hello; answer warmly.")
    ARTIFACTS.mkdir(exist_ok=True)
    p.screenshot(path=str(ARTIFACTS / "web-chat.png"), full_page=True)  # type: ignore[attr-defined]
    assert (ARTIFACTS / "web-chat.png").stat().st_size > 10_000

    # Conversations live in the browser: a reload shows it again.
    p.reload()  # type: ignore[attr-defined]
    sync_api.expect(p.locator("#conversations li")).to_have_count(1)  # type: ignore[attr-defined]
    sync_api.expect(p.locator(".message.assistant .answer").last).to_have_text("Hello from the web chat!")  # type: ignore[attr-defined]


def test_stop_button_ends_the_generation(server: str, page: object) -> None:
    p = page
    # A script that cannot end by itself before Stop (a free-running random model might sample a stop token).
    scripted(p, "<|channel|>final<|message|>" + " and then" * 1500)
    p.goto(server + "/")  # type: ignore[attr-defined]
    p.fill("#prompt", "Write a very long story.")  # type: ignore[attr-defined]
    p.press("#prompt", "Enter")  # type: ignore[attr-defined]
    stop = p.locator("#stop")  # type: ignore[attr-defined]
    sync_api.expect(stop).to_be_visible()
    time.sleep(0.5)
    stop.click()
    sync_api.expect(p.locator(".message.assistant .meta").last).to_have_text("stopped")  # type: ignore[attr-defined]
    sync_api.expect(p.locator("#send")).to_be_visible()  # type: ignore[attr-defined]
    deadline = time.monotonic() + 10
    while "edgeoss_requests_in_flight 0.0" not in httpx.get(server + "/metrics").text:
        assert time.monotonic() < deadline, "the server kept generating after Stop"
        time.sleep(0.05)


def test_a_reply_that_fails_under_way_shows_the_servers_error(server: str, page: object) -> None:
    """The stream a lost worker ends (tests/system/test_workers.py makes it for real): what was
    already sent stays, and the server's reason is shown, not a silently cut answer."""
    p = page
    role = '{"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": null}]}'
    part = '{"choices": [{"index": 0, "delta": {"content": "Half an ans"}, "finish_reason": null}]}'
    error = '{"error": {"message": "the worker at 10.0.0.2:50052 was lost mid-run", "type": "server_error"}}'
    body = "".join(f"data: {event}\n\n" for event in (role, part, error))
    p.route(  # type: ignore[attr-defined]
        "**/v1/chat/completions",
        lambda route: route.fulfill(status=200, content_type="text/event-stream", body=body),
    )
    p.goto(server + "/")  # type: ignore[attr-defined]
    p.fill("#prompt", "Hi")  # type: ignore[attr-defined]
    p.press("#prompt", "Enter")  # type: ignore[attr-defined]
    message = p.locator(".message.assistant").last  # type: ignore[attr-defined]
    sync_api.expect(message.locator(".error")).to_have_text("Error: the worker at 10.0.0.2:50052 was lost mid-run")
    sync_api.expect(message.locator(".answer")).to_have_text("Half an ans")


HOSTILE = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script><b>bold</b>'


def test_model_output_with_html_is_shown_as_text_and_runs_nothing(server: str, page: object) -> None:
    """The answer is the model's text, never markup; and the page's policy forbids inline script."""
    p = page
    scripted(p, f"<|channel|>final<|message|>{HOSTILE}<|return|>")
    response = p.goto(server + "/")  # type: ignore[attr-defined]
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy and "object-src 'none'" in policy
    p.fill("#prompt", "Say something dangerous.")  # type: ignore[attr-defined]
    p.press("#prompt", "Enter")  # type: ignore[attr-defined]
    answer = p.locator(".message.assistant .answer").last  # type: ignore[attr-defined]
    sync_api.expect(answer).to_have_text(HOSTILE)
    assert answer.locator("img, script, b").count() == 0
    assert p.evaluate("window.__pwned === undefined")  # type: ignore[attr-defined]


MARKDOWN = (
    "Here is **bold**, `inline code` and a [link](https://example.org).\n\n"
    "```python\nprint('hi')\n```\n\n"
    '[click](javascript:window.__pwned=3) and <a href="javascript:window.__pwned=4">raw</a>'
)


def test_the_answer_is_markdown_sanitized_with_copyable_code(server: str, page: object) -> None:
    p = page
    scripted(p, f"<|channel|>final<|message|>{MARKDOWN}<|return|>")
    p.goto(server + "/")  # type: ignore[attr-defined]
    p.fill("#prompt", "Show me markdown.")  # type: ignore[attr-defined]
    p.press("#prompt", "Enter")  # type: ignore[attr-defined]
    answer = p.locator(".message.assistant .answer").last  # type: ignore[attr-defined]
    sync_api.expect(answer.locator("strong")).to_have_text("bold")
    sync_api.expect(answer.locator("pre code")).to_have_text("print('hi')")
    sync_api.expect(answer.locator("pre button.copy")).to_have_text("Copy")
    assert answer.locator("a[href='https://example.org']").get_attribute("rel") == "noopener noreferrer"
    hrefs = [a.get_attribute("href") or "" for a in answer.locator("a").all()]
    assert not any(h.lower().startswith("javascript") for h in hrefs), hrefs
    assert answer.locator("a:text('raw')").count() == 0  # raw HTML is text, never a link
    assert p.evaluate("window.__pwned === undefined")  # type: ignore[attr-defined]
    # The vendored scripts come from this server, never a CDN.
    scripts = p.evaluate("[...document.scripts].map(s => s.src)")  # type: ignore[attr-defined]
    assert scripts and all(src.startswith(server + "/static/") for src in scripts), scripts


@pytest.mark.skipif(not sandbox.status().available, reason="no sandbox for the python tool")
def test_a_tool_call_is_a_folded_block_outside_the_answer(server: str, page: object) -> None:
    p = page
    scripted(
        p,
        "<|channel|>analysis<|message|>Compute.<|end|>"
        "<|start|>assistant to=python<|channel|>analysis code<|message|>print(6 * 7)<|call|>"
        "<|channel|>final<|message|>It is **42**.<|return|>",
    )
    p.goto(server + "/")  # type: ignore[attr-defined]
    p.fill("#prompt", "6 times 7?")  # type: ignore[attr-defined]
    p.press("#prompt", "Enter")  # type: ignore[attr-defined]
    message = p.locator(".message.assistant").last  # type: ignore[attr-defined]
    sync_api.expect(message.locator(".answer")).to_have_text("It is 42.")
    tool = message.locator("details.tool")
    sync_api.expect(tool.locator("summary")).to_have_text("python: 42")
    assert tool.get_attribute("open") is None  # folded
    tool.locator("summary").click()
    sync_api.expect(tool.locator(".tool-input")).to_have_text("print(6 * 7)")
    sync_api.expect(tool.locator(".tool-output")).to_have_text("42")
    p.reload()  # type: ignore[attr-defined]
    sync_api.expect(p.locator(".message.assistant details.tool summary").last).to_have_text("python: 42")
