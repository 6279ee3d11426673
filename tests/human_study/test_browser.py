"""End to end in a real headless browser (Debian's chromium + chromium-driver, selenium).

A small synthetic study is annotated by clicking (one query by keyboard), the
report is checked, and a screenshot of the page is taken (written to
docs/human_study.png only when ALIGNEDREID_UPDATE_SCREENSHOT=1, so a test run
leaves the checkout as it was).
"""

import os
import shutil
import sqlite3
import threading
from pathlib import Path

import pytest

from human_study import make_demo, make_server, study_report

SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "human_study.png"


@pytest.fixture
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    assert chromium and driver_path, "install chromium and chromium-driver (see .ci/run)"
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1360,900", "--force-device-scale-factor=1"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def served_demo(tmp_path):
    info = make_demo(tmp_path / "demo", queries=6, seed=0, synthetic_only=True)
    server = make_server(info.study, host="127.0.0.1", port=0)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        yield info, f"http://127.0.0.1:{server.effective_port}"
    finally:
        server.close()
        thread.join(timeout=10)


def _wait(driver, condition, timeout=30):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(condition)


def _images_loaded(driver):
    return driver.execute_script(
        "return Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)")


def test_annotate_by_clicking_then_report(browser, served_demo, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    info, base = served_demo
    con = sqlite3.connect(info.study)
    is_match = dict(con.execute("SELECT id, is_match FROM candidates"))
    total = con.execute("SELECT COUNT(*) FROM queries").fetchone()[0]
    con.close()
    browser.get(f"{base}/annotate?token={info.token}")
    progress = browser.find_element(By.CSS_SELECTOR, "[data-progress]")
    _wait(browser, lambda d: progress.text == f"0 / {total}")
    _wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "[data-candidate]"))
    _wait(browser, _images_loaded)
    query = browser.find_element(By.CSS_SELECTOR, "img[data-query]")
    assert query.is_displayed() and query.location["x"] < browser.find_element(
        By.CSS_SELECTOR, "[data-candidate]").location["x"]  # the query on the left
    shot = tmp_path / "human_study.png"
    assert browser.save_screenshot(str(shot))
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if os.environ.get("ALIGNEDREID_UPDATE_SCREENSHOT") == "1":
        tmp = SCREENSHOT.with_suffix(".tmp.png")
        shutil.copyfile(shot, tmp)
        os.replace(tmp, SCREENSHOT)

    picked, expected_correct = [], 0
    for i in range(total):
        cands = _wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "[data-candidate]"))
        ids = [c.get_attribute("data-candidate") for c in cands]
        want_right = i % 3 != 2
        target = next(j for j, cid in enumerate(ids) if bool(is_match[cid]) == want_right)
        if i == 1:  # by keyboard: no candidate has the focus; the first arrow press gives
            # it to the first candidate, the next ones move it, Enter picks
            assert browser.switch_to.active_element.get_attribute("data-candidate") is None
            browser.switch_to.active_element.send_keys(Keys.ARROW_RIGHT)
            assert browser.switch_to.active_element.get_attribute("data-candidate") == ids[0]
            for _ in range(target):
                browser.switch_to.active_element.send_keys(Keys.ARROW_RIGHT)
            assert browser.switch_to.active_element.get_attribute("data-candidate") == ids[target]
            browser.switch_to.active_element.send_keys(Keys.ENTER)
        else:
            cands[target].click()
        picked.append(ids[target])
        expected_correct += want_right
        _wait(browser, lambda d, n=i + 1: progress.text == f"{n} / {total}")
    done = browser.find_element(By.ID, "done")
    _wait(browser, lambda d: done.is_displayed())
    assert not browser.find_elements(By.CSS_SELECTOR, "[data-candidate]") or not \
        browser.find_element(By.ID, "task").is_displayed()

    con = sqlite3.connect(info.study)
    stored = [c for (c,) in con.execute(
        "SELECT s.candidate_id FROM answers s JOIN queries q ON q.id = s.query_id "
        "ORDER BY q.position")]
    con.close()
    assert stored == picked
    rep = study_report(info.study)
    (me,) = [a for a in rep.annotators if a.name == info.annotator]
    assert (me.answered, me.correct) == (total, expected_correct)
    assert me.rank1 == pytest.approx(expected_correct / total)
