"""The console in a real headless Chromium (selenium + Debian's chromedriver): log in, see the
tickets, open one, claim it, read its history, log out. Skipped when Chromium is missing."""
from __future__ import annotations

import os
import re
import threading
import uuid
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from bot.console.auth import set_password
from models import Binding, Cadre, Staff

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
if not CHROMIUM.exists() or not CHROMEDRIVER.exists():
    if os.environ.get("YINLING_REQUIRE_BROWSER"):  # CI installs them: missing is a failure
        raise RuntimeError("YINLING_REQUIRE_BROWSER is set but /usr/bin/chromium or "
                           "/usr/bin/chromedriver is missing")
    pytest.skip("headless browser test: /usr/bin/chromium and /usr/bin/chromedriver are "
                "missing (apt-get install -y chromium chromium-driver)", allow_module_level=True)
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed "
                                "(pip install -r requirements.txt)")
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions as EC  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

PASSWORD = "browser-pass-1"
CHROME_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--no-first-run", "--disable-dev-shm-usage"]


@pytest.fixture
def server(app):
    """The app served on a loopback port by werkzeug in a thread; yields the base URL."""
    srv = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.server_port}"
    srv.shutdown()
    thread.join(timeout=10)


@pytest.fixture
def browser(tmp_path):
    """Headless Chromium driven through the system chromedriver (nothing downloaded)."""
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in CHROME_ARGS + [f"--user-data-dir={tmp_path / 'profile'}"]:
        options.add_argument(arg)
    driver = webdriver.Chrome(service=webdriver.ChromeService(str(CHROMEDRIVER)),
                              options=options)
    driver.set_window_size(1280, 900)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


@pytest.fixture
def story(app, wx):
    """A staff member with a console password and two tickets reported through the webhook."""
    cadre_openid, staff_openid = (f"o-{t}-{uuid.uuid4().hex[:10]}" for t in ("c", "s"))
    with app.extensions["yinling"].db.session() as s:
        cadre = Cadre(name="王建国", phone="13800001001", community="幸福社区")
        s.add(cadre)
        s.flush()
        s.add_all([Binding(openid=cadre_openid, cadre_id=cadre.id, relation="self"),
                   Staff(name="李房管", openid=staff_openid, on_duty=True)])
        s.flush()
        set_password(s, "李房管", PASSWORD)
    numbers = []
    for category, text, urgency in (("2", "楼道灯坏了一个月", "1"), ("1", "老伴摔倒了", "2")):
        for answer in ("反映问题", category, text, urgency):
            wx.text(cadre_openid, answer)
        numbers.append(int(re.search(r"问题编号是 (\d+) 号", wx.text(cadre_openid, "1")).group(1)))
    return numbers


def _wait(driver, css: str):
    return WebDriverWait(driver, 15).until(EC.presence_of_element_located((By.CSS_SELECTOR, css)))


def test_log_in_see_tickets_open_one_claim_it_log_out(server, browser, story):
    light, urgent = story
    browser.get(server + "/console/tickets")
    _wait(browser, "#login")  # sent to the login page first
    assert "/console/login" in browser.current_url
    browser.find_element(By.ID, "name").send_keys("李房管")
    browser.find_element(By.ID, "password").send_keys("wrong-password")
    browser.find_element(By.ID, "login").click()
    assert "姓名或密码不对" in _wait(browser, "#problem").text
    browser.find_element(By.ID, "password").send_keys(PASSWORD)
    browser.find_element(By.ID, "login").click()

    table = _wait(browser, "#tickets")
    assert browser.current_url.endswith("/console/tickets")  # back where it was going
    rows = table.find_elements(By.CSS_SELECTOR, "tbody tr")
    assert [r.get_attribute("data-number") for r in rows] == [str(urgent), str(light)]
    assert "紧急" in rows[0].text and "接单时限还剩" in rows[1].text
    assert browser.find_element(By.ID, "who").text == "李房管"

    rows[1].find_element(By.LINK_TEXT, f"{light}号").click()
    history = _wait(browser, "#history")
    assert "反映问题" in history.text and "楼道灯坏了一个月" in browser.find_element(
        By.ID, "description").text
    browser.find_element(By.ID, "claim").click()
    assert "已接单" in _wait(browser, "#done").text
    assert "李房管 接单" in browser.find_element(By.ID, "history").text

    browser.set_window_size(390, 844)  # a phone: the list becomes cards, still readable
    browser.get(server + "/console/tickets")
    table = _wait(browser, "#tickets")
    assert not table.find_element(By.CSS_SELECTOR, "thead").is_displayed()
    cell = table.find_element(By.CSS_SELECTOR, f"tr[data-number='{light}'] td[data-label]")
    assert cell.value_of_css_property("display") == "block"  # one field a line
    assert browser.execute_script("return document.documentElement.scrollWidth") <= 390
    assert "李房管（我）" in table.text

    browser.find_element(By.ID, "logout").click()
    _wait(browser, "#login")
    browser.get(server + "/console/tickets")
    _wait(browser, "#login")
    assert "/console/login" in browser.current_url


def test_feature_pages_open_in_the_browser_and_read_on_a_phone(app, server, browser, story,
                                                                tmp_path):
    yl = app.extensions["yinling"]
    now = datetime.now(yl.settings.zone)
    with yl.db.session() as s:
        s.add(Cadre(name="赵德顺", phone="13800001002", branch="第一党支部"))
    ledger = tmp_path / "ledger.csv"
    ledger.write_text("手机号,费用类型,期间,金额,已缴,缴费日期\n"
                      f"13800001002,党费,{now:%Y-%m},30,否,\n", encoding="utf-8")
    runner = app.test_cli_runner()
    assert runner.invoke(args=["fees", "import", str(ledger)]).exit_code == 0
    created = runner.invoke(args=["course", "create", "书法班", "--venue", "活动中心",
                                  "--capacity", "5", "--session",
                                  f"{now + timedelta(days=7):%Y-%m-%d} 09:00",
                                  "--deadline", f"{now + timedelta(days=5):%Y-%m-%d}"])
    number = re.search(r"course (\d+) created", created.output).group(1)

    browser.get(server + "/console/fees/")
    _wait(browser, "#login")
    browser.find_element(By.ID, "name").send_keys("李房管")
    browser.find_element(By.ID, "password").send_keys(PASSWORD)
    browser.find_element(By.ID, "login").click()
    row = _wait(browser, "#branches tr.branch")
    assert "第一党支部" in row.text and "0/1项" in row.text and "0%" in row.text
    assert "合计" in browser.find_element(By.ID, "total").text
    row.find_element(By.LINK_TEXT, "第一党支部").click()
    assert "赵德顺" in _wait(browser, "#owing").text

    browser.find_element(By.LINK_TEXT, "课程名单").click()
    _wait(browser, "#ahead").find_element(By.LINK_TEXT, "书法班").click()
    export = _wait(browser, "#export")
    assert export.text == "下载 Excel"
    assert export.get_attribute("href").endswith(f"/console/courses/{number}/roster.xlsx")

    browser.find_element(By.LINK_TEXT, "群发记录").click()
    assert "还没有群发过通知" in _wait(browser, "#empty").text
    browser.find_element(By.LINK_TEXT, "节日走访").click()
    assert _wait(browser, "#picker").find_element(By.ID, "f").is_displayed()
    assert browser.find_element(By.TAG_NAME, "h1").text.startswith("节日走访")

    browser.set_window_size(390, 844)  # a phone: the branch table becomes cards
    browser.get(server + "/console/fees/")
    table = _wait(browser, "#branches")
    assert not table.find_element(By.CSS_SELECTOR, "thead").is_displayed()
    assert browser.execute_script("return document.documentElement.scrollWidth") <= 390
