"""The WeChat client against the fake API: token sharing and refresh, error mapping, menu."""
from __future__ import annotations

import json
import socket
import threading
import time

import pytest
import redis as redis_lib

from bot.settings import ROOT, load_settings
from bot.wechat import Outcome, WeChatClient, check_menu
from tests.fake_wechat import live_settings


@pytest.fixture
def redis_client(backend):
    """This backend's Redis (in-process stand-in, or the real one with PostgreSQL)."""
    return backend[1]


def client_for(fake, redis_client, **overrides) -> WeChatClient:
    """A client as one process would build it."""
    settings = load_settings(live_settings(fake, **overrides), environ={})
    return WeChatClient(settings, redis_client)


def test_token_comes_from_stable_token_under_the_api_base_and_is_shared(fake, redis_client):
    first, second = client_for(fake, redis_client), client_for(fake, redis_client)
    assert first.send_text("o-1", "您好").ok
    assert second.send_text("o-2", "您好").ok   # another process: the token is in Redis
    assert fake.token_requests == [False]
    assert fake.unknown == []                   # never wechatpy's hard-coded cgi-bin/token
    assert [m.payload["text"]["content"] for m in fake.messages()] == ["您好", "您好"]


def test_concurrent_first_use_fetches_one_token(fake, redis_client):
    fake.inject("token", delay=0.3)   # a slow token answer widens the race
    clients = [client_for(fake, redis_client) for _ in range(2)]
    results = []

    def send(i):
        results.append(clients[i % 2].send_text(f"o-{i}", "hi"))

    threads = [threading.Thread(target=send, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(r.ok for r in results) and len(results) == 12
    assert fake.token_requests == [False]


def test_expired_token_refreshes_once_and_retries_once(fake, redis_client):
    client = client_for(fake, redis_client)
    assert client.send_text("o-1", "一").ok
    fake.expire_tokens()
    result = client.send_text("o-1", "二")
    assert result.ok
    assert fake.token_requests == [False, False]
    assert [api for api, _ in fake.calls].count("custom") == 3   # ok, 42001, ok


def test_a_token_still_rejected_after_refresh_is_not_retried_again(fake, redis_client):
    client = client_for(fake, redis_client)
    assert client.send_text("o-1", "一").ok
    fake.inject("custom", errcode=40001, times=None)
    result = client.send_text("o-1", "二")
    assert result.outcome is Outcome.RETRY_LATER and result.code == 40001
    assert [api for api, _ in fake.calls].count("custom") == 3   # one ok, then exactly two
    # The platform kept handing back the rejected token, so the one refresh forced a new one.
    assert fake.token_requests == [False, False, True]


@pytest.mark.parametrize("fault,outcome", [
    ({"errcode": 45015}, Outcome.WINDOW_CLOSED),
    ({"errcode": 45047}, Outcome.QUOTA_SPENT),
    ({"errcode": 43004}, Outcome.UNSUBSCRIBED),
    ({"errcode": 45009}, Outcome.RETRY_LATER),
    ({"errcode": -1}, Outcome.RETRY_LATER),
    ({"status": 500}, Outcome.RETRY_LATER),
    ({"status": 503}, Outcome.RETRY_LATER),
    ({"errcode": 40003}, Outcome.REFUSED),
    ({"errcode": 40164}, Outcome.FATAL),
], ids=lambda v: str(v))
def test_answers_map_to_typed_outcomes(fake, redis_client, fault, outcome):
    fake.inject("custom", **fault)
    result = client_for(fake, redis_client).send_text("o-1", "您好")
    assert result.outcome is outcome
    assert str(fault.get("errcode", fault.get("status"))) in result.reason


def test_slow_answer_is_a_timeout_to_retry_later(fake, redis_client):
    client = client_for(fake, redis_client, wechat_timeout_seconds=0.3,
                        delivery_lease_seconds=2)
    assert client.send_text("o-1", "warm").ok
    fake.inject("custom", delay=1.0)
    started = time.monotonic()
    result = client.send_text("o-1", "slow")
    assert result.outcome is Outcome.RETRY_LATER and "no answer within" in result.reason
    assert time.monotonic() - started < 0.9


def test_wrong_secret_is_fatal_and_says_where(fake, redis_client):
    result = client_for(fake, redis_client, wechat_secret="wrong").send_text("o-1", "x")
    assert result.outcome is Outcome.FATAL and "stable_token: 40125" in result.reason


def test_template_send_returns_the_msgid(fake, redis_client):
    data = {"first": {"value": "通知"}, "keyword1": {"value": "内容"}}
    result = client_for(fake, redis_client).send_template("o-1", "TPL", data)
    assert result.ok and result.msgid == str(fake.messages(api="template")[0].msgid)
    assert fake.messages()[0].payload["data"] == data


def test_redis_down_still_sends_with_a_process_local_token(fake):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]   # nothing listens here
    dead = redis_lib.Redis(host="127.0.0.1", port=port, socket_connect_timeout=0.2)
    client = client_for(fake, dead)
    assert client.send_text("o-1", "一").ok and client.send_text("o-1", "二").ok
    assert fake.token_requests == [False]


# ---- the custom menu ----------------------------------------------------------------------
def test_menu_file_has_the_six_keys_and_fits_wechat_limits():
    menu = json.loads((ROOT / "config" / "menu.json").read_text(encoding="utf-8"))
    assert check_menu(menu) == []
    bad = {"button": [{"type": "click", "name": "一个非常非常长的按钮名字", "key": "MENU_FEES"}]}
    problems = check_menu(bad)
    assert any("bytes" in p for p in problems) and any("MENU_HELP" in p for p in problems)


def test_menu_push_creates_the_menu_through_the_api(make_app, fake):
    app = make_app(**live_settings(fake))
    result = app.test_cli_runner().invoke(args=["menu", "push"])
    assert result.exit_code == 0, result.output
    assert "menu created: 3 buttons" in result.output
    keys = [b.get("key") for top in fake.menu["button"] for b in [top, *top.get("sub_button", [])]]
    assert {"MENU_FEES", "MENU_REPORT", "MENU_MY_ISSUES", "MENU_COURSES", "MENU_NOTICES",
            "MENU_HELP"} <= set(keys)
    assert fake.menu["button"][0]["name"] == "反映问题"


def test_the_menu_links_the_subscription_page_at_the_public_address(make_app, fake):
    """订阅提醒 opens /m/subscribe (PRODUCT §7.6) at YINLING_PUBLIC_URL; without an address
    the button is left out and said so, the rest of the menu still goes out."""
    app = make_app(**live_settings(fake), public_url="https://yl.example.cn/")
    result = app.test_cli_runner().invoke(args=["menu", "push"])
    assert result.exit_code == 0, result.output
    urls = [b.get("url") for top in fake.menu["button"] for b in top.get("sub_button", [])]
    assert "https://yl.example.cn/m/subscribe" in urls
    bare = make_app(**live_settings(fake))
    result = bare.test_cli_runner().invoke(args=["menu", "push"])
    assert result.exit_code == 0 and "'订阅提醒' left out" in result.output
    assert not any(b.get("url") for top in fake.menu["button"]
                   for b in top.get("sub_button", []))


def test_menu_push_in_sandbox_records_instead_of_sending(app):
    result = app.test_cli_runner().invoke(args=["menu", "push"])
    assert result.exit_code == 0 and "sandbox mode, nothing sent" in result.output


def test_menu_push_reports_an_api_refusal(make_app, fake):
    app = make_app(**live_settings(fake))
    fake.inject("menu", errcode=40016)
    result = app.test_cli_runner().invoke(args=["menu", "push"])
    assert result.exit_code != 0 and "40016" in result.output
