"""A real headless browser for the page tests and the screenshot script: Debian's Chromium
driven by selenium through Debian's chromium-driver.

Selenium is pointed at ``/usr/bin/chromedriver`` and ``/usr/bin/chromium`` explicitly, so its
driver manager never tries to download a browser (the machine's network is closed). The
browser runs headless, as root needs it (``--no-sandbox``), without GPU, background
networking, component updates or sync, and with a new empty profile folder each time.

When Chromium, chromium-driver or selenium is missing, :func:`chromium` FAILS the test with
the reason (``.ci/run`` installs them), it never skips.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

#: Debian's binaries (packages chromium and chromium-driver).
CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
CHROMEDRIVER_CANDIDATES = ("/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver")
INSTALL_HINT = ("apt-get install chromium chromium-driver and pip install selenium "
                "(.ci/run and the 'test' extra install them)")
#: The switches a root, headless, offline Chromium needs (the profile folder is added).
CHROMIUM_ARGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1400,1000")


class BrowserMissing(RuntimeError):
    """Chromium, its driver or selenium is not installed: the message says which."""


def _first(candidates: tuple[str, ...], name: str) -> str:
    for path in candidates:
        if Path(path).is_file():
            return path
    found = shutil.which(name)
    if found:
        return found
    raise BrowserMissing(f"{name} not found ({', '.join(candidates)}): {INSTALL_HINT}")


@contextlib.contextmanager
def headless_chromium(width: int = 1400, height: int = 1000) -> Iterator[Any]:
    """``with headless_chromium() as driver:`` a selenium WebDriver on headless Chromium,
    quit at the end of the block (its profile folder removed).

    Raises
    ------
    BrowserMissing
        Chromium, chromium-driver or selenium is not installed.
    """
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError as exc:
        raise BrowserMissing(f"selenium is not installed ({exc}): {INSTALL_HINT}") from None
    binary = _first(CHROMIUM_CANDIDATES, "chromium")
    driver_path = _first(CHROMEDRIVER_CANDIDATES, "chromedriver")
    with tempfile.TemporaryDirectory(prefix="rtcheck-chromium-") as profile:
        options = webdriver.ChromeOptions()
        options.binary_location = binary
        for arg in CHROMIUM_ARGS:
            options.add_argument(arg)
        options.add_argument(f"--window-size={width},{height}")
        options.add_argument(f"--user-data-dir={profile}")
        driver = webdriver.Chrome(service=Service(executable_path=driver_path),
                                  options=options)
        try:
            driver.set_page_load_timeout(60)
            yield driver
        finally:
            driver.quit()


@contextlib.contextmanager
def chromium(width: int = 1400, height: int = 1000) -> Iterator[Any]:
    """:func:`headless_chromium` for a test: a missing part FAILS the test with the reason."""
    import pytest

    with contextlib.ExitStack() as stack:
        try:
            driver = stack.enter_context(headless_chromium(width, height))
        except BrowserMissing as exc:
            pytest.fail(str(exc), pytrace=False)
        yield driver


def full_page_png(driver: Any, path: Path, min_height: int = 600) -> Path:
    """Save a PNG of the whole page (the window resized to the document's height)."""
    height = int(driver.execute_script(
        "return Math.max(document.body.scrollHeight, document.documentElement.scrollHeight)"))
    width = int(driver.execute_script("return document.documentElement.scrollWidth"))
    driver.set_window_size(max(width, 1000), max(height + 40, min_height))
    path.parent.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(path))
    return path
