"""Browser fixtures: Debian's headless Chromium driven by Playwright; a screenshot of the page on failure."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]


def chromium_path() -> str:
    """The system Chromium (``apt-get install chromium``; .ci/run installs it). Playwright never downloads one."""
    for candidate in (os.environ.get("MQ_CHROMIUM"), shutil.which("chromium"), "/usr/bin/chromium",
                      shutil.which("chromium-browser")):
        if candidate and os.path.exists(candidate):
            return candidate
    return ""


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    path = chromium_path()
    if not path:
        if os.environ.get("CI"):
            pytest.fail("no chromium: .ci/run installs it (apt-get install -y chromium)")
        pytest.skip("no chromium on this machine (apt-get install chromium)")
    sync_api.expect.set_options(timeout=20_000)  # a loaded 2-core CI machine: pages poll every few seconds
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, request, tmp_path_factory):
    """A fresh page (1280x860); its screenshot goes to ``<pytest tmp>/console-screenshots`` if the test fails."""
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    context.set_default_timeout(20_000)
    tab = context.new_page()
    errors: list = []
    tab.on("pageerror", lambda e: errors.append(str(e)))
    tab.page_errors = errors
    yield tab
    failed = getattr(request.node, "rep_call", None)
    if failed is not None and failed.failed:
        shots = Path(tmp_path_factory.getbasetemp()) / "console-screenshots"
        shots.mkdir(exist_ok=True)
        path = shots / f"{request.node.name}.png"
        tab.screenshot(path=str(path), full_page=True)
        print(f"screenshot of the failed page: {path}")
    context.close()
