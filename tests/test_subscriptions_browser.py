"""/m/subscribe in a real headless Chromium posing as WeChat's browser (its user agent), with no
way to reach WeChat's JS-SDK (blocked): the page still loads at once and
reads well — large type, high contrast, one column, still whole at twice the font size — and
says in words that the button is on its way; nothing throws."""
from __future__ import annotations

import time

import pytest

from tests.conftest import oid
from tests.fake_wechat import live_settings
from tests.test_console_browser import browser  # noqa: F401  (skips without Chromium)
from tests.test_pages_browser import contrast, site  # noqa: F401
from tests.test_subscriptions import SUBSCRIBE_IDS, WECHAT_UA
from tests.test_template_fields import TEMPLATE_IDS

By = pytest.importorskip("selenium.webdriver.common.by").By


@pytest.fixture
def sub_site(make_app, fake, site):  # noqa: F811
    """The app served by `site`, sending to the fake, every subscription template set."""
    base, holder = site
    holder["app"] = make_app(**live_settings(
        fake, public_url=base, wechat_templates={**TEMPLATE_IDS, **SUBSCRIBE_IDS}))
    return base


def _whole(driver) -> None:
    """Large dark-on-white type, no sideways scroll, no text cut off."""
    body = driver.find_element(By.TAG_NAME, "body")
    assert float(body.value_of_css_property("font-size").removesuffix("px")) >= 20
    assert contrast(body.value_of_css_property("color"),
                    body.value_of_css_property("background-color")) >= 7
    for hint in driver.find_elements(By.CSS_SELECTOR, "#sdk-wait, .state, h2"):
        assert float(hint.value_of_css_property("font-size").removesuffix("px")) >= 20
    assert driver.execute_script(
        "return document.documentElement.scrollWidth <= window.innerWidth")
    clipped = driver.execute_script(
        "return [...document.querySelectorAll('p, h1, h2')]"
        ".filter(e => e.scrollWidth > e.clientWidth + 1 || e.scrollHeight > e.clientHeight + 1)"
        ".length")
    assert clipped == 0


def test_the_subscribe_page_reads_well_in_wechats_browser_without_the_js_sdk(
        sub_site, fake, browser):  # noqa: F811
    browser.execute_cdp_cmd("Network.setUserAgentOverride", {"userAgent": WECHAT_UA})
    browser.execute_cdp_cmd("Network.enable", {})   # no JS-SDK, even where CI has internet
    browser.execute_cdp_cmd("Network.setBlockedURLs", {"urls": ["*.qq.com*"]})
    fake.visitor = oid("browser")
    browser.set_window_size(390, 844)
    started = time.monotonic()
    browser.get(sub_site + "/m/subscribe")   # through the fake's silent web login
    assert time.monotonic() - started < 10   # the unreachable JS-SDK does not hold the load
    assert browser.execute_script("return document.readyState") == "complete"
    assert fake.logins == [fake.visitor]
    # The login's #wechat_redirect stays on the address: wx.config is signed without it.
    assert browser.current_url.split("#")[0] == sub_site + "/m/subscribe"
    assert browser.find_element(By.ID, "subscribe").text == "订阅消息提醒"
    assert browser.find_element(By.ID, "sdk-wait").is_displayed()
    states = browser.find_elements(By.CSS_SELECTOR, ".state")
    assert len(states) == len(SUBSCRIBE_IDS) and all("还没有订阅" in s.text for s in states)
    assert len(browser.find_elements(By.TAG_NAME, "wx-open-subscribe")) == len(SUBSCRIBE_IDS)
    assert not [p for p in browser.find_elements(By.CSS_SELECTOR, "[id^=sub-]")
                if p.is_displayed()]   # no result shown before anything was tapped
    assert browser.execute_script("return typeof window.wx") == "undefined"
    _whole(browser)
    browser.execute_script("document.body.style.fontSize = '44px'")   # 关怀模式
    _whole(browser)
