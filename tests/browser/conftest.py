"""Fixtures of the browser tests: the built book and headless Chromium driven by Selenium; nothing is built here.

``make test`` builds the book (``specvit book --profile smoke --strict``) and then runs these tests with
``SPECVIT_BROWSER_TESTS=1``: a missing book, browser or driver is then a failure. Without that variable (a bare
``pytest tests`` before any book exists) the tests are skipped with the reason. The browser is Chromium
(``SPECVIT_CHROMIUM``, else ``chromium`` / ``chromium-browser`` / ``google-chrome`` on the PATH) with its
chromedriver (``SPECVIT_CHROMEDRIVER``, else ``chromedriver``); ``make browser`` installs Debian's ``chromium`` and
``chromium-driver`` when they are missing. Name resolution is switched off in the browser, so no request can leave
the machine, and the tests record every request the page makes.
"""
import json
import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HTML = ROOT / "_build" / "html"
CHAPTER_01 = HTML / "chapters" / "01_simulation.html"
CHAPTER_02 = HTML / "chapters" / "02_architectures.html"
CHAPTER_05 = HTML / "chapters" / "05_benchmark.html"
CHAPTER_06 = HTML / "chapters" / "06_fisher.html"
SCREENSHOTS = ROOT / "_build" / "screenshots"
REQUIRED = os.environ.get("SPECVIT_BROWSER_TESTS") == "1"
LOCAL = ("file://", "data:", "blob:", "about:")  # nothing of these leaves the machine
#: Records uncaught errors, failed resource loads and console.error calls from the first line of every document.
ERROR_RECORDER = """
window.__specvit_errors = [];
window.addEventListener('error', function (e) {
  var t = e.target || {};
  window.__specvit_errors.push(e.message || ('failed to load ' + (t.src || t.href || t.tagName)));
}, true);
window.addEventListener('unhandledrejection', function (e) { window.__specvit_errors.push(String(e.reason)); });
var __console_error = console.error;
console.error = function () {
  window.__specvit_errors.push(Array.prototype.map.call(arguments, String).join(' '));
  return __console_error.apply(console, arguments);
};
"""


def missing(reason: str):
    """Fail when the browser tests are required (``SPECVIT_BROWSER_TESTS=1``, as in ``make test``), else skip."""
    if REQUIRED:
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def book_html() -> Path:
    """The built book's HTML folder, with chapter 01 in it."""
    if not CHAPTER_01.is_file():
        missing(f"the book is not built ({CHAPTER_01.relative_to(ROOT)} is missing): run "
                "`.venv/bin/specvit book --profile smoke --strict` first (make test does)")
    return HTML


def _executable(variable: str, names: tuple[str, ...]) -> str | None:
    if os.environ.get(variable):
        return os.environ[variable]
    return next((path for path in map(shutil.which, names) if path), None)


@pytest.fixture(scope="session")
def driver(book_html):
    """Headless Chromium under Selenium, recording the page's network requests and its console."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ModuleNotFoundError:
        missing("selenium is not installed: pip install -e '.[test]'")
    chromium = _executable("SPECVIT_CHROMIUM", ("chromium", "chromium-browser", "google-chrome"))
    chromedriver = _executable("SPECVIT_CHROMEDRIVER", ("chromedriver",))
    if not chromium or not chromedriver:
        missing("Chromium and chromedriver are needed: `make browser` (Debian: apt-get install chromium "
                "chromium-driver), or set SPECVIT_CHROMIUM and SPECVIT_CHROMEDRIVER")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000",
                     "--host-resolver-rules=MAP * ~NOTFOUND", "--disable-background-networking",
                     "--disable-component-update", "--disable-default-apps", "--disable-extensions", "--no-first-run"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    browser = webdriver.Chrome(options=options, service=Service(executable_path=chromedriver))
    browser.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": ERROR_RECORDER})
    yield browser
    browser.quit()


class PageRecord:
    """What a page did: its requests (URLs) and its console errors, gathered from the driver's logs."""

    def __init__(self, driver):
        self.driver = driver
        self.requests: list[str] = []
        self.console: list[dict] = []

    def drain(self) -> "PageRecord":
        """Move the driver's new performance and browser log entries into ``requests`` and ``console``."""
        for entry in self.driver.get_log("performance"):
            message = json.loads(entry["message"])["message"]
            if message["method"] == "Network.requestWillBeSent":
                self.requests.append(message["params"]["request"]["url"])
        self.console += self.driver.get_log("browser")
        return self

    def errors(self) -> list[str]:
        """Console entries of level SEVERE and everything the page's error recorder caught."""
        recorded = self.driver.execute_script("return window.__specvit_errors || [];")
        return [e["message"] for e in self.console if e["level"] == "SEVERE"] + list(recorded)

    def check(self, what: str) -> None:
        """Assert, after draining the logs, that the page logged no error (``what="console"``), or that it loaded
        plotly.js and requested nothing that would leave the machine (``what="network"``)."""
        self.drain()
        if what == "console":
            assert not self.errors(), self.errors()
        else:
            assert self.requests, "no request recorded: the performance log is not working"
            assert any(u.endswith("plotly.min.js") or "/plotly.min.js?" in u for u in self.requests)
            remote = sorted({u for u in self.requests if not u.startswith(LOCAL)})
            assert not remote, f"requests that would leave the machine: {remote}"


def open_chapter(driver, page: Path) -> PageRecord:
    """Open a chapter of the built book from file:// and wait until every plotly figure on it has drawn.

    The logs of earlier pages are discarded first, so that the returned record holds this page's requests and
    console only.
    """
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    if not page.is_file():
        missing(f"{page.relative_to(ROOT)} is not in the built book: build it with `specvit book --profile smoke`")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    PageRecord(driver).drain()
    driver.get(page.as_uri())
    expected = page.read_text().count('class="plotly-graph-div"')
    drawn = ("return document.readyState === 'complete' ? Array.from(document.querySelectorAll('.js-plotly-plot'))"
             ".filter(function (e) { return e.querySelector('svg.main-svg'); }).length : -1;")
    try:
        WebDriverWait(driver, 30).until(lambda d: d.execute_script(drawn) >= expected)
    except TimeoutException:
        pytest.fail(f"{driver.execute_script(drawn)} of the {expected} plotly figures of {page.name} drew within "
                    f"30 s; page errors: {PageRecord(driver).drain().errors()}", pytrace=False)
    return PageRecord(driver).drain()


_OPENED: dict = {}  # page -> its PageRecord, while the browser stays on it


def on_page(driver, page: Path) -> PageRecord:
    """The record of ``page``, opened (:func:`open_chapter`) unless the browser is on it already."""
    if page not in _OPENED or driver.current_url != page.as_uri():
        _OPENED.clear()
        _OPENED[page] = open_chapter(driver, page)
    return _OPENED[page]


@pytest.fixture
def chapter_01(driver, book_html) -> PageRecord:
    """Chapter 01 opened from file://, once every plotly figure on it has drawn."""
    return on_page(driver, CHAPTER_01)


@pytest.fixture
def chapter_02(driver, book_html) -> PageRecord:
    """Chapter 02 (the tokenization visualizer) opened from file://, once its figure has drawn."""
    return on_page(driver, CHAPTER_02)


@pytest.fixture
def chapter_05(driver, book_html) -> PageRecord:
    """Chapter 05 (the attention explorer and the results dashboard) opened from file://, once they have drawn."""
    return on_page(driver, CHAPTER_05)


@pytest.fixture
def chapter_06(driver, book_html) -> PageRecord:
    """Chapter 06 (the results dashboard's R^2-against-SNR view) opened from file://, once it has drawn."""
    return on_page(driver, CHAPTER_06)
