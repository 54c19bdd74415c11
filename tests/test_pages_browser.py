"""The page behind a visit notice in a real headless Chromium (the console test's driver):
pushed through the template channel to the fake WeChat, opened from its url through the fake's
silent web login, `不在家` tapped, the answer recorded; readable at a phone's width, with large
type, high contrast and big buttons, still whole at twice the font size."""
from __future__ import annotations

import re
import threading
from datetime import timedelta

import pytest
from sqlalchemy import select
from werkzeug.serving import make_server

from models.festivals import AWAY, FestivalVisit
from tests.conftest import db
from tests.fake_wechat import live_settings
from tests.test_console_browser import _wait, browser  # noqa: F401  (skips without Chromium)
from tests.test_pages import DUTY, festival_config, notice_urls, people, today  # noqa: F401

By = pytest.importorskip("selenium.webdriver.common.by").By


@pytest.fixture
def site():
    """A loopback server known before its app (the public address names it): (url, holder)."""
    holder: dict = {}
    srv = make_server("127.0.0.1", 0, lambda env, start: holder["app"](env, start),
                      threaded=True)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.server_port}", holder
    srv.shutdown()
    thread.join(timeout=10)


@pytest.fixture
def page_app(make_app, fake, site, tmp_path):
    """The app served by `site`, sending to the fake, a festival a week ahead."""
    base, holder = site
    path = tmp_path / "festivals.yaml"
    path.write_text(festival_config(today() + timedelta(days=7)), encoding="utf-8")
    holder["app"] = make_app(**live_settings(fake, public_url=base, duty_phone=DUTY,
                                             extra={"festivals": str(path)}))
    return holder["app"]


def _rgb(css: str) -> tuple[float, ...]:
    return tuple(float(v) for v in re.findall(r"[\d.]+", css)[:3])


def _luminance(rgb) -> float:
    def channel(c):
        c /= 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4
    r, g, b = (channel(c) for c in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(fg: str, bg: str) -> float:
    """WCAG contrast ratio of two computed CSS colours."""
    hi, lo = sorted((_luminance(_rgb(fg)), _luminance(_rgb(bg))), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def _readable(driver) -> None:
    """Large type, contrast of at least 7:1, buttons at least 48 px high, no sideways scroll."""
    body = driver.find_element(By.TAG_NAME, "body")
    assert float(body.value_of_css_property("font-size").removesuffix("px")) >= 20
    assert contrast(body.value_of_css_property("color"),
                    body.value_of_css_property("background-color")) >= 7
    buttons = driver.find_elements(By.CSS_SELECTOR, "#answers button")
    assert buttons
    for button in buttons:
        assert button.size["height"] >= 48
        background = button.value_of_css_property("background-color")
        if _rgb(background) and "0, 0, 0, 0" not in background:
            assert contrast(button.value_of_css_property("color"), background) >= 7
    assert driver.execute_script(
        "return document.documentElement.scrollWidth <= window.innerWidth")
    clipped = driver.execute_script(
        "return [...document.querySelectorAll('button, p, h1, h2, .message')]"
        ".filter(e => e.scrollWidth > e.clientWidth + 1 || e.scrollHeight > e.clientHeight + 1)"
        ".length")
    assert clipped == 0


def test_open_a_visit_notice_from_its_push_tap_not_home_and_see_it_recorded(
        page_app, fake, people, browser):  # noqa: F811
    url = notice_urls(page_app, fake, people)[people.cadre]   # as the template carried it
    fake.visitor = people.cadre                                # who opens it in WeChat
    browser.set_window_size(390, 844)
    browser.get(url)
    message = _wait(browser, "#message")
    assert "尊敬的王建国同志" in message.text and fake.logins == [people.cadre]
    assert browser.current_url.split("#")[0] == url   # the login's code and state are gone
    assert browser.find_element(By.CSS_SELECTOR, "#duty a.tel").get_attribute("href") == \
        "tel:" + DUTY.replace("-", "")
    _readable(browser)

    browser.find_element(By.ID, "away").click()
    recorded = _wait(browser, "#recorded")
    assert "已记录：节日期间不在家" in recorded.text
    with db(page_app) as s:
        row = s.scalar(select(FestivalVisit))
        assert (row.answer, row.answered_by, row.on_behalf) == (AWAY, people.cadre, False)

    # WeChat's largest font (关怀模式): every size doubles; the page still reads whole.
    browser.execute_script("document.body.style.fontSize = '44px'")
    _readable(browser)
