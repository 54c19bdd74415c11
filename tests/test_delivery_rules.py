"""The channel rules as plain functions: chat window and count, quiet hours, template fields."""
from __future__ import annotations

from datetime import datetime, timedelta
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest

from bot.channel import cs_window, notice_template, quiet_until
from bot.delivery import backoff
from bot.notices import GENERIC_ENTRY, facts_of, template_data
from bot.settings import SettingsError, load_settings

TZ = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 10, 29, 10, 0, tzinfo=TZ)


def settings(**overrides):
    """Settings from defaults plus overrides, ignoring the environment."""
    return load_settings(overrides, environ={})


def follower(kind="text", ago=timedelta(hours=1), sent=0, subscribed=True):
    """A follower-like row whose window opened `ago` before NOW."""
    return SimpleNamespace(last_inbound_at=NOW - ago, last_inbound_kind=kind,
                           cs_sent_since_inbound=sent, subscribed=subscribed)


def test_a_user_message_opens_48_hours_for_five_messages():
    s = settings()
    assert cs_window(follower(sent=0), NOW, s) == (True, NOW + timedelta(hours=47), 5)
    assert cs_window(follower(sent=4), NOW, s)[2] == 1
    assert cs_window(follower(sent=5), NOW, s) == (False, None, 0)
    assert cs_window(follower(ago=timedelta(hours=48)), NOW, s) == (False, None, 0)


@pytest.mark.parametrize("kind", ["click", "follow", "scan"])
def test_a_click_follow_or_scan_opens_one_minute_for_three(kind):
    s = settings()
    assert cs_window(follower(kind, ago=timedelta(seconds=20)), NOW, s) == \
        (True, NOW + timedelta(seconds=40), 3)
    assert cs_window(follower(kind, ago=timedelta(seconds=20), sent=3), NOW, s)[0] is False
    assert cs_window(follower(kind, ago=timedelta(seconds=61)), NOW, s)[0] is False


def test_window_numbers_come_from_config():
    s = settings(cs_quota_message=2, cs_quota_event=1, cs_event_window_seconds=10)
    assert cs_window(follower(), NOW, s)[2] == 2
    assert cs_window(follower("click", ago=timedelta(seconds=5)), NOW, s)[2] == 1
    assert cs_window(follower("click", ago=timedelta(seconds=11)), NOW, s)[0] is False


def test_no_follower_never_wrote_or_unsubscribed_means_closed():
    s = settings()
    assert cs_window(None, NOW, s) == (False, None, 0)
    assert cs_window(SimpleNamespace(last_inbound_at=None), NOW, s)[0] is False
    assert cs_window(follower(subscribed=False), NOW, s)[0] is False


def test_until_is_shown_in_the_callers_zone():
    utc_now = NOW.astimezone(ZoneInfo("UTC"))
    _, until, _ = cs_window(follower(), utc_now, settings())
    assert until.tzinfo == ZoneInfo("UTC") and until == NOW + timedelta(hours=47)


@pytest.mark.parametrize("hours,local,expected", [
    ("21:00-08:00", "2026-10-29T22:30", "2026-10-30T08:00"),
    ("21:00-08:00", "2026-10-29T06:00", "2026-10-29T08:00"),
    ("21:00-08:00", "2026-10-29T21:00", "2026-10-30T08:00"),
    ("21:00-08:00", "2026-10-29T08:00", None),
    ("21:00-08:00", "2026-10-29T20:59", None),
    ("12:00-14:00", "2026-10-29T13:00", "2026-10-29T14:00"),
    ("12:00-14:00", "2026-10-29T15:00", None),
    ("off", "2026-10-29T23:00", None),
    ("00:00-00:00", "2026-10-29T23:00", None),
])
def test_quiet_hours_end(hours, local, expected):
    now = datetime.fromisoformat(local).replace(tzinfo=TZ)
    end = quiet_until(now, settings(quiet_hours=hours))
    assert end == (None if expected is None else
                   datetime.fromisoformat(expected).replace(tzinfo=TZ))


def test_quiet_hours_use_yinling_tz_whatever_zone_now_is_in():
    utc = datetime(2026, 10, 29, 14, 0, tzinfo=ZoneInfo("UTC"))   # 22:00 in Shanghai
    assert quiet_until(utc, settings()) == datetime(2026, 10, 30, 8, 0, tzinfo=TZ)


def test_template_fields_from_a_body():
    """A push no kind lists shows its text as `what` (one line) and when it was made."""
    kind, facts = facts_of("core/raw", {"text": "重阳节走访通知\n组织将于10月25日上门走访。"},
                           "重阳节走访通知\n组织将于10月25日上门走访。", NOW)
    data = template_data(GENERIC_ENTRY.fields, facts)
    assert kind == "notice" and set(data) == {"thing1", "time2"}
    assert data["thing1"]["value"] == "重阳节走访通知 组织将于10月25日上…"   # 20 shown
    assert data["time2"]["value"] == "2026年10月29日 10:00"


def test_a_long_body_is_cut_to_the_twenty_characters_a_field_shows():
    body = "通知\n" + "长" * 450
    _, facts = facts_of("core/raw", {"text": body}, body, NOW)
    shown = template_data(GENERIC_ENTRY.fields, facts)["thing1"]["value"]
    assert len(shown) == 20 and shown.endswith("…") and shown.startswith("通知 长")


def test_sandbox_has_a_stand_in_template_and_live_mode_does_not():
    assert notice_template(settings()) == "sandbox-notice"
    live = settings(wechat_appid="wx1", wechat_secret="s")
    assert notice_template(live) == ""
    assert notice_template(settings(wechat_appid="wx1", wechat_secret="s",
                                    wechat_template_notice="T1")) == "T1"


def test_backoff_doubles_up_to_the_cap():
    s = settings(delivery_backoff_seconds=2, delivery_backoff_max_seconds=10)
    seconds = [backoff(n, s).total_seconds() for n in (1, 2, 3, 4, 5)]
    for got, want in zip(seconds, (2, 4, 8, 10, 10)):
        assert want * 0.9 <= got <= want * 1.1


def test_delivery_settings_are_validated():
    with pytest.raises(SettingsError, match="delivery_concurrency"):
        settings(delivery_concurrency=0)
    with pytest.raises(SettingsError, match="3 x wechat_timeout_seconds"):
        settings(delivery_lease_seconds=5, wechat_timeout_seconds=5)
    with pytest.raises(SettingsError, match="cs_quota_event"):
        settings(cs_quota_event=-1)
    assert load_settings(environ={"YINLING_CS_QUOTA_MESSAGE": "4"}).cs_quota_message == 4
