"""Settings: defaults, validation messages, production refusals."""
from __future__ import annotations

import pytest

from bot.settings import SettingsError, load_settings

KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"


def test_defaults_are_sandbox_sqlite_dev_token():
    s = load_settings(environ={})
    assert s.sandbox and s.database_url.endswith("var/yinling.db")
    assert s.wechat_token == "yinling-dev-token" and s.tz == "Asia/Shanghai"
    assert s.quiet_window[0].hour == 21 and s.quiet_window[1].hour == 8


def test_environment_values_are_read():
    s = load_settings(environ={"WECHAT_APPID": "wx1", "WECHAT_SECRET": "sec",
                               "QUIET_HOURS": "22:00-07:30", "YINLING_TZ": "Asia/Urumqi"})
    assert not s.sandbox and s.quiet_window[1].minute == 30 and s.tz == "Asia/Urumqi"


@pytest.mark.parametrize("env,fragment", [
    ({"WECHAT_AES_KEY": "short", "WECHAT_APPID": "wx1"}, "43-character"),
    ({"WECHAT_AES_KEY": KEY}, "needs WECHAT_APPID"),
    ({"QUIET_HOURS": "late"}, "QUIET_HOURS"),
    ({"QUIET_HOURS": "25:00-08:00"}, "impossible time"),
    ({"YINLING_TZ": "Mars/Olympus"}, "YINLING_TZ"),
    ({"YINLING_ENV": "staging"}, "YINLING_ENV"),
    ({"WECHAT_APPID": "wx1"}, "both WECHAT_APPID and WECHAT_SECRET"),
    ({"WECHAT_API_BASE": "ftp://x"}, "WECHAT_API_BASE"),
    ({"YINLING_REPLY_BUDGET": "soon"}, "must be a number"),
])
def test_bad_values_stop_with_a_clear_message(env, fragment):
    with pytest.raises(SettingsError, match=fragment):
        load_settings(environ=env)


PRODUCTION = {"YINLING_ENV": "production", "WECHAT_TOKEN": "prodToken123XyzQ9",
              "WECHAT_APPID": "wx1", "WECHAT_SECRET": "s",
              "WECHAT_AES_KEY": "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
              "DATABASE_URL": "postgresql://u@db/yinling", "REDIS_URL": "redis://cache:6379/0",
              "YINLING_SECRET_KEY": "a-long-random-secret-for-cookies",
              "YINLING_DUTY_PHONE": "0415-2100000",
              "YINLING_PUBLIC_URL": "https://ylt.example.gov.cn"}


def test_production_refuses_dev_defaults_and_names_them():
    with pytest.raises(SettingsError) as err:
        load_settings(environ={"YINLING_ENV": "production"})
    message = str(err.value)
    assert "development token" in message and "sandbox" in message and "SQLite" in message
    assert "YINLING_SECRET_KEY" in message


def test_production_accepts_real_settings_or_an_explicit_allowance():
    real = PRODUCTION
    assert load_settings(environ=real).env == "production"
    plain = {**real, "WECHAT_AES_KEY": "", "YINLING_ALLOW_PLAINTEXT": "1"}
    assert load_settings(environ=plain).allow_plaintext
    allowed = load_settings(environ={"YINLING_ENV": "production",
                                     "YINLING_ALLOW_DEV_DEFAULTS": "1"})
    assert allowed.sandbox


@pytest.mark.parametrize("change, fragment", [
    ({"REDIS_URL": ""}, "REDIS_URL is unset"),
    ({"YINLING_DUTY_PHONE": ""}, "YINLING_DUTY_PHONE is unset"),
    ({"YINLING_SECRET_KEY": "a" * 16}, "YINLING_SECRET_KEY is weak"),
    ({"YINLING_SECRET_KEY": "ab" * 40}, "YINLING_SECRET_KEY is weak"),
    ({"WECHAT_TOKEN": "tok123"}, "WECHAT_TOKEN is weak"),
    ({"WECHAT_AES_KEY": ""}, "WECHAT_AES_KEY is unset"),
    ({"YINLING_PUBLIC_URL": ""}, "YINLING_PUBLIC_URL is unset"),
    ({"YINLING_PUBLIC_URL": "http://ylt.example.gov.cn"}, "not https"),
])
def test_production_refuses_what_breaks_it_in_production(change, fragment):
    with pytest.raises(SettingsError, match=fragment):
        load_settings(environ={**PRODUCTION, **change})


def test_short_secret_key_is_refused():
    with pytest.raises(SettingsError, match="YINLING_SECRET_KEY"):
        load_settings(environ={"YINLING_SECRET_KEY": "short"})


def test_create_app_refuses_bad_settings():
    from bot import create_app

    with pytest.raises(SettingsError):
        create_app({"wechat_aes_key": "x" * 10, "wechat_appid": "wx"})


@pytest.mark.parametrize("content", ["categories: [unclosed", "categories:\n  - key: a\n    name: A\n  - key: a\n    name: B\n"])
def test_create_app_refuses_a_broken_feature_config(tmp_path, content):
    from bot import create_app

    path = tmp_path / "issue_categories.yaml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(SettingsError, match="issue_categories.yaml"):
        create_app({"extra": {"issue_categories": str(path)},
                    "database_url": f"sqlite:///{tmp_path / 'x.db'}"})


def test_create_app_refuses_a_missing_feature_config(tmp_path):
    from bot import create_app

    with pytest.raises(SettingsError, match="nope.yaml is not usable"):
        create_app({"extra": {"issue_categories": str(tmp_path / "nope.yaml")},
                    "database_url": f"sqlite:///{tmp_path / 'x.db'}"})
