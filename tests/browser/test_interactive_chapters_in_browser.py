"""Chapters 02, 05 and 06 of the built book in headless Chromium: the tokenization visualizer, the attention explorer,
the results dashboard and its R^2-against-SNR view draw, answer the mouse and stay offline.

Run after ``specvit book --profile smoke --strict`` (see conftest.py). Screenshots go to ``_build/screenshots/``.
"""
import re
from pathlib import Path

import pytest

SCREENSHOTS = Path(__file__).resolve().parents[2] / "_build" / "screenshots"
#: The state of a plotly graph div: active slider step and button, trace visibility, title and drawn traces.
STATE = """
var gd = arguments[0], slider = (gd._fullLayout.sliders || [])[0], menus = gd._fullLayout.updatemenus || [];
return {slider: slider ? slider.active : null, button: menus.length ? menus[0].active : null,
        visible: gd.data.map(function (t) { return t.visible !== false; }), title: gd._fullLayout.title.text,
        drawn: gd.querySelectorAll('.cartesianlayer .trace').length};
"""


def _figure(driver, div_id: str, shot: str):
    """The graph div ``div_id`` scrolled into view, checked to have drawn data, and a screenshot of it."""
    gd = driver.find_element("id", div_id)
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", gd)
    assert gd.find_elements("css selector", "svg.main-svg"), f"{div_id} holds no svg"
    assert gd.find_elements("css selector", ".cartesianlayer .trace"), f"{div_id} drew no data"
    gd.screenshot(str(SCREENSHOTS / f"{shot}.png"))
    return gd


def test_the_tokenization_visualizer_draws_256_patches_and_hover_names_their_range(chapter_02):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.support.ui import WebDriverWait

    driver = chapter_02.driver
    gd = _figure(driver, "tokenization-visualizer", "02_tokenization-visualizer")
    bars = gd.find_elements("css selector", ".barlayer .point")
    assert len(bars) == 256
    ActionChains(driver).move_to_element(bars[128]).perform()  # a real mouse over the 129th patch
    lines = ("return Array.from(arguments[0].querySelectorAll('.hoverlayer .hovertext tspan.line'))"
             ".map(function (t) { return t.textContent; }).join('\\n');")
    label = WebDriverWait(driver, 20).until(lambda d: d.execute_script(lines, gd))
    gd.screenshot(str(SCREENSHOTS / "02_tokenization-visualizer_hover.png"))
    number = re.search(r"patch (\d+) of 256", label)
    span = re.search(r"(\d+\.\d)-(\d+\.\d) A \(pixels (\d+)-(\d+)\)", label)
    assert number and span, label
    first, last = int(span[3]), int(span[4])
    assert last - first == 15 and first == 16 * (int(number[1]) - 1)
    assert 7100 < float(span[1]) < float(span[2]) < 8850


@pytest.mark.parametrize("check", ["console", "network"])
def test_chapter_02_logs_no_error_and_no_request_leaves_the_machine(chapter_02, check):
    chapter_02.check(check)  # everything since the page was opened, the hover above included


def test_moving_the_attention_slider_shows_another_layer(chapter_05):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.support.ui import WebDriverWait

    driver = chapter_05.driver
    gd = _figure(driver, "attention-explorer", "05_attention-explorer_first_layer")
    assert gd.find_elements("css selector", ".heatmaplayer image, .hm image"), "no heat map drawn"
    n_layers = driver.execute_script("return arguments[0].layout.sliders[0].steps.length;", gd)
    before = driver.execute_script(STATE, gd)
    assert before["slider"] == 0 and before["visible"] == [True, True] + [False] * (n_layers - 1)
    if n_layers == 1:
        pytest.skip("the attention run shown at this profile has a single layer: nothing to slide to")
    rail = gd.find_element("css selector", ".slider-container .slider-rail-touch-rect")
    ActionChains(driver).move_to_element_with_offset(rail, rail.rect["width"] // 2 - 4, 0).click().perform()
    WebDriverWait(driver, 20).until(lambda d: d.execute_script(STATE, gd)["slider"] == n_layers - 1)
    after = driver.execute_script(STATE, gd)
    gd.screenshot(str(SCREENSHOTS / "05_attention-explorer_last_layer.png"))
    assert after["visible"] == [True] + [False] * (n_layers - 1) + [True]
    assert after["title"] != before["title"] and f"layer {n_layers} of {n_layers}" in after["title"]


def test_every_button_of_the_results_dashboard_shows_its_own_view(chapter_05):
    from selenium.webdriver.support.ui import WebDriverWait

    driver = chapter_05.driver
    gd = _figure(driver, "results-dashboard", "05_results-dashboard")
    labels = [b.text.strip() for b in gd.find_elements("css selector", ".updatemenu-button")]
    assert labels[0] == "R2 by architecture" and {"MAE by stellar type", "predicted vs true"} <= set(labels)
    seen = []
    for k, label in enumerate(labels):
        [button] = [b for b in gd.find_elements("css selector", ".updatemenu-button") if b.text.strip() == label]
        button.click()
        WebDriverWait(driver, 20).until(lambda d: d.execute_script(STATE, gd)["button"] == k)
        state = driver.execute_script(STATE, gd)
        gd.screenshot(str(SCREENSHOTS / f"05_results-dashboard_{k}.png"))
        assert state["drawn"] >= sum(state["visible"]) > 0, (label, state)
        seen.append((tuple(state["visible"]), state["title"]))
    assert len(set(seen)) == len(labels), "two buttons showed the same view"


@pytest.mark.parametrize("check", ["console", "network"])
def test_chapter_05_logs_no_error_and_no_request_leaves_the_machine(chapter_05, check):
    chapter_05.check(check)  # everything since the page was opened, the interactions above included


def test_the_r2_against_snr_view_draws_every_trace_and_a_legend_click_hides_a_model(chapter_06):
    from selenium.webdriver.support.ui import WebDriverWait

    driver = chapter_06.driver
    gd = _figure(driver, "r2-against-snr", "06_r2-against-snr")
    names = driver.execute_script("return arguments[0].data.map(function (t) { return t.name; });", gd)
    assert names[:3] == ["ceiling, 10-90% of grid", "ceiling, median (this simulator)", "paper, 3D median"]
    assert len(names) > 3, "no model drawn: the smoke book has runs"
    assert driver.execute_script("return arguments[0]._fullLayout.xaxis.type;", gd) == "log"
    before = driver.execute_script(STATE, gd)
    assert before["drawn"] == len(names), before  # band, median, paper points and every model
    model = names[-1]
    [entry] = [e for e in gd.find_elements("css selector", ".legend .traces")
               if e.find_element("css selector", ".legendtext").text.strip() == model]
    entry.find_element("css selector", ".legendtoggle").click()
    hidden = "return arguments[0].data[arguments[1]].visible;"
    WebDriverWait(driver, 20).until(lambda d: d.execute_script(hidden, gd, len(names) - 1) == "legendonly")
    after = driver.execute_script(STATE, gd)
    gd.screenshot(str(SCREENSHOTS / "06_r2-against-snr_model_hidden.png"))
    assert after["drawn"] == len(names) - 1, after


@pytest.mark.parametrize("check", ["console", "network"])
def test_chapter_06_logs_no_error_and_no_request_leaves_the_machine(chapter_06, check):
    chapter_06.check(check)  # everything since the page was opened, the legend click above included
