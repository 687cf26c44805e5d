"""The built book in a real headless browser: chapter 01's interactive figures draw, react and stay offline.

Chapters 02 and 05 have their own modules (test_chapter_02_in_browser.py, test_chapter_05_in_browser.py).

Run after ``specvit book --profile smoke --strict`` (``make test`` does both; see conftest.py). Screenshots go to
``_build/screenshots/``.
"""
import re
from importlib.resources import files
from pathlib import Path

import pytest

from specvit_core.interactive import GRAVITY_LINES

ROOT = Path(__file__).resolve().parents[2]
CHAPTER_01 = ROOT / "_build" / "html" / "chapters" / "01_simulation.html"
SCREENSHOTS = ROOT / "_build" / "screenshots"
MAX_BOOK_BYTES = 50 * 1024**2
FIGURES = ("spectrum-explorer", "snr-explorer", "stellar-types")  # the div_ids chapter 01 gives interactive.show
#: The state of a plotly graph div: slider position, trace visibility, title, x range and the drawn line paths.
STATE = """
var gd = arguments[0], slider = (gd._fullLayout.sliders || [])[0];
return {active: slider ? slider.active : null, visible: gd.data.map(function (t) { return t.visible !== false; }),
        title: gd._fullLayout.title.text, xrange: gd._fullLayout.xaxis.range.slice(),
        paths: Array.from(gd.querySelectorAll('.scatterlayer path.js-line')).map(function (p) {
          return p.getAttribute('d'); })};
"""


def _script_sources(html: str) -> list[str]:
    return re.findall(r"<script[^>]*\ssrc=\"([^\"]+)\"", html)


def test_the_built_book_stays_under_50_mb(book_html):
    size = sum(p.stat().st_size for p in book_html.rglob("*") if p.is_file())
    assert size < MAX_BOOK_BYTES, f"_build/html holds {size / 1024**2:.1f} MB"


def test_pages_load_scripts_only_from_the_book_and_plotly_js_once(book_html):
    pages = sorted(book_html.rglob("*.html"))
    remote = {f"{p.relative_to(book_html)}: {s}" for p in pages for s in _script_sources(p.read_text())
              if re.match(r"(https?:)?//", s)}
    assert not remote, f"scripts fetched from the network: {sorted(remote)}"
    interactive = [p for p in pages if 'class="plotly-graph-div"' in p.read_text()]
    assert {p.name for p in interactive} >= {"01_simulation.html", "02_architectures.html", "05_benchmark.html",
                                          "06_fisher.html"}
    for page in interactive:
        plotly = [s for s in _script_sources(page.read_text()) if s.split("?")[0].endswith("/plotly.min.js")]
        assert plotly == [s for s in plotly if s.startswith("../_static/")] and len(plotly) == 1, (page.name, plotly)
    shipped = files("plotly") / "package_data" / "plotly.min.js"
    assert (book_html / "_static" / "plotly.min.js").read_bytes() == shipped.read_bytes()


def test_every_plotly_figure_renders(chapter_01):
    driver = chapter_01.driver
    plots = driver.find_elements("css selector", ".js-plotly-plot")
    assert {p.get_attribute("id") for p in plots} >= set(FIGURES)
    for plot in plots:
        assert plot.find_elements("css selector", "svg.main-svg"), f"{plot.get_attribute('id')} holds no svg"
        assert plot.find_elements("css selector", ".scatterlayer .trace"), f"{plot.get_attribute('id')} drew no data"
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", plot)
        plot.screenshot(str(SCREENSHOTS / f"01_{plot.get_attribute('id')}.png"))
    # The page around the SNR explorer: the static matplotlib figure above, the interactive one below.
    driver.execute_script("arguments[0].scrollIntoView({block: 'end'});", driver.find_element("id", "snr-explorer"))
    driver.save_screenshot(str(SCREENSHOTS / "01_page_snr_section.png"))


def test_moving_the_snr_slider_changes_the_plotted_spectrum(chapter_01):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.support.ui import WebDriverWait

    driver = chapter_01.driver
    gd = driver.find_element("id", "snr-explorer")
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", gd)
    before = driver.execute_script(STATE, gd)
    n_steps = driver.execute_script("return arguments[0].layout.sliders[0].steps.length;", gd)
    gd.screenshot(str(SCREENSHOTS / "01_snr-explorer_first_step.png"))
    rail = gd.find_element("css selector", ".slider-container .slider-rail-touch-rect")
    # A real mouse click near the right end of the slider's rail: the faintest magnitude.
    ActionChains(driver).move_to_element_with_offset(rail, rail.rect["width"] // 2 - 4, 0).click().perform()
    WebDriverWait(driver, 20).until(lambda d: d.execute_script(STATE, gd)["active"] == n_steps - 1)
    after = driver.execute_script(STATE, gd)
    gd.screenshot(str(SCREENSHOTS / "01_snr-explorer_last_step.png"))
    assert before["active"] == 0 and after["active"] == n_steps - 1
    assert before["visible"].index(True) == 0 and after["visible"].index(True) == n_steps - 1
    assert after["paths"] and after["paths"] != before["paths"], "the plotted spectrum did not change"
    assert after["title"] != before["title"] and "SNR" in after["title"]


def test_a_zoom_button_of_the_spectrum_explorer_zooms(chapter_01):
    from selenium.webdriver.support.ui import WebDriverWait

    driver = chapter_01.driver
    gd = driver.find_element("id", "spectrum-explorer")
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", gd)
    before = driver.execute_script(STATE, gd)
    [button] = [b for b in gd.find_elements("css selector", ".updatemenu-button") if b.text.strip() == "Ca II"]
    button.click()
    WebDriverWait(driver, 20).until(lambda d: d.execute_script(STATE, gd)["xrange"] != before["xrange"])
    low, high = driver.execute_script(STATE, gd)["xrange"]
    assert before["xrange"][0] < low < GRAVITY_LINES["Ca II 8498"] < GRAVITY_LINES["Ca II 8662"] < high < before["xrange"][1]
    gd.screenshot(str(SCREENSHOTS / "01_spectrum-explorer_ca_ii.png"))


@pytest.mark.parametrize("check", ["console", "network"])
def test_no_console_error_and_no_request_leaves_the_machine(chapter_01, check):
    chapter_01.check(check)  # everything since the page was opened, the interactions above included
