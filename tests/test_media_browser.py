"""A ticket's kept photo and voice in a real browser: Debian's headless Chromium, logged in to
the console, shows the photo and plays the recording (converted to MP3) from the console's own
route, under its Content-Security-Policy. Skipped, with the reason, where Chromium or ffmpeg is
missing (CI installs both)."""
from __future__ import annotations

import pytest

from bot.console.auth import set_password
from models import Staff
from tests.conftest import bound_user, db, oid
from tests.test_console_browser import PASSWORD, _wait  # (skips without Chromium)
from tests.test_console_browser import browser, server  # noqa: F401  (its fixtures)
from tests.test_media import AMR, JPEG, needs_ffmpeg, report, settled
from tests.wx import WeChat

By = pytest.importorskip("selenium.webdriver.common.by").By


@pytest.fixture
def app(live):
    """The console's browser fixtures serve the live app (which downloads from the fake)."""
    return live


def test_the_ticket_page_shows_the_photo_and_plays_the_voice(
        app, fake, server, browser):  # noqa: F811
    needs_ffmpeg()
    with db(app) as s:
        s.add(Staff(name="李房管", openid=oid("staff"), on_duty=True))
        s.flush()
        set_password(s, "李房管", PASSWORD)
    fake.add_media("PHOTO-B", JPEG, "image/jpeg")
    fake.add_media("VOICE-B", AMR, "audio/amr")
    n = report(WeChat(app), bound_user(app), "PHOTO-B", "VOICE-B")
    settled(app, n, "saved", "saved")

    browser.get(f"{server}/console/tickets/{n}")
    _wait(browser, "#login")
    browser.find_element(By.ID, "name").send_keys("李房管")
    browser.find_element(By.ID, "password").send_keys(PASSWORD)
    browser.find_element(By.ID, "login").click()
    _wait(browser, "#media")
    assert "照片1张、语音1段已保存" in browser.find_element(By.ID, "media").text
    state = browser.execute_async_script("""
        const done = arguments[arguments.length - 1];
        const img = document.querySelector('dd.media-saved img');
        const audio = document.querySelector('dd.media-saved audio');
        const report = () => done({width: img.naturalWidth, ready: audio.readyState,
                                   duration: audio.duration,
                                   error: audio.error && audio.error.code});
        if (audio.readyState >= 1) { report(); return; }
        audio.addEventListener('loadedmetadata', report);
        audio.addEventListener('error', report);
        audio.load();
    """)
    assert state["width"] == 8 and state["error"] is None, state
    assert state["ready"] >= 1 and 0.9 < state["duration"] < 1.5, state   # one second of voice
