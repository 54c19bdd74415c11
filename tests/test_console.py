"""The staff web console: password CLI, login/logout, throttling, CSRF, roles, the ticket
list with SLA timers (time travel), the ticket history, and claim/reply/resolve from the web."""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
import yaml
from flask import Blueprint
from sqlalchemy import select
from werkzeug.security import check_password_hash

from bot.jobs import run_job
from bot.console.guard import user
from bot.console.pages import ConsolePage
from bot.console.auth import PasswordError, Throttle, set_password, verify_login
from handlers.issues.sla import sla_timer
from handlers.console.web import safe_next
from handlers.issues.jobs import jobs as issue_jobs
from handlers.issues.policy import parse_policy
from models import Binding, Cadre, Staff
from models.issues import Ticket, TicketEvent
from tests.conftest import PASSWORD, db, login, oid, page, sent, token_of, wait_for

TZ = ZoneInfo("Asia/Shanghai")
MONDAY_9 = datetime(2026, 3, 2, 9, 0, tzinfo=TZ)  # a working Monday morning
CONFIG = """
categories:
  - {key: medical, name: 医疗就医, staff: [张医生]}
  - {key: housing, name: 住房, staff: [李房管]}
  - {key: other, name: 其他, staff: []}
sla:
  normal: {renotify_after_minutes: 30, escalate_after_minutes: 120}
  urgent: {renotify_after_minutes: 10, escalate_after_minutes: 30}
  reply_within_working_days: 1
working_hours:
  days: [1, 2, 3, 4, 5]
  hours: ["08:30-12:00", "13:30-17:30"]
"""


@pytest.fixture
def app(make_app, tmp_path):
    """The app with this test's issue policy and a short login-throttle window."""
    path = tmp_path / "issue_categories.yaml"
    path.write_text(CONFIG, encoding="utf-8")
    return make_app(extra={"issue_categories": str(path), "console_login_max_failures": 3,
                           "console_login_window_seconds": 2})


@dataclass
class People:
    """Openids of the cadre side and of the staff."""

    cadre: str
    family: str
    doctor: str   # 张医生, staff, on duty, console password set
    housing: str  # 李房管, staff, on duty, console password set
    boss: str     # 赵主任, supervisor, console password set


@pytest.fixture
def people(app) -> People:
    """A cadre with family, two staff and a supervisor, all with console passwords."""
    p = People(*(oid(t) for t in ("cadre", "family", "doctor", "housing", "boss")))
    with db(app) as s:
        cadre = Cadre(name="王建国", phone="13800001001", community="幸福社区",
                      address="幸福路1号")
        s.add(cadre)
        s.flush()
        s.add_all([Binding(openid=p.cadre, cadre_id=cadre.id, relation="self"),
                   Binding(openid=p.family, cadre_id=cadre.id, relation="family"),
                   Staff(name="张医生", openid=p.doctor, on_duty=True),
                   Staff(name="李房管", openid=p.housing, on_duty=True),
                   Staff(name="赵主任", openid=p.boss, role="supervisor"),
                   Staff(name="孙离职", openid=oid("gone"), active=False)])
        s.flush()
        for name in ("张医生", "李房管", "赵主任"):
            set_password(s, name, PASSWORD)
    return p


def report(wx, openid: str, category: str = "2", text: str = "楼道灯坏了", urgency: str = "1"):
    """File a ticket through the real webhook; its number."""
    wx.text(openid, "反映问题")
    wx.text(openid, category)
    wx.text(openid, text)
    wx.text(openid, urgency)
    return int(re.search(r"问题编号是 (\d+) 号", wx.text(openid, "1")).group(1))


def events(app, number: int) -> list[tuple[str, str | None]]:
    """(kind, staff name) of a ticket's events."""
    with db(app) as s:
        names = dict(s.execute(select(Staff.id, Staff.name)).all())
        return [(e.kind, names.get(e.actor_staff_id)) for e in s.scalars(
            select(TicketEvent).where(TicketEvent.ticket_id == number).order_by(TicketEvent.id))]


def row_text(html: str, number: int) -> str:
    """The text of one ticket's row in the list."""
    row = re.search(rf'<tr id="ticket-{number}".*?</tr>', html, re.S).group(0)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", row))


def act(client, number: int, action: str, text: str = "", token: str | None = None):
    """POST a ticket action with the CSRF token of the ticket page."""
    if token is None:
        token = token_of(page(client, f"/console/tickets/{number}"))
    return client.post(f"/console/tickets/{number}/{action}",
                       data={"text": text, "csrf_token": token})


# ---- the password command ------------------------------------------------------------------
def test_staff_password_cli_prompts_twice_hidden_and_hashes(app, people):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["staff", "password", "李房管"],
                           input="new-secret-42\nnew-secret-42\n")
    assert result.exit_code == 0, result.output
    assert "new-secret-42" not in result.output  # hidden input is not echoed
    assert result.output.count("Console password") == 1 and "Repeat" in result.output
    with db(app) as s:
        stored = s.scalar(select(Staff.password_hash).where(Staff.name == "李房管"))
    assert stored.startswith("scrypt:") and "new-secret-42" not in stored
    assert check_password_hash(stored, "new-secret-42")
    # Two different entries are refused and asked again; nothing changes when input ends.
    result = runner.invoke(args=["staff", "password", "李房管"], input="aaaaaaaa1\nbbbbbbbb2\n")
    assert result.exit_code != 0 and "do not match" in result.output
    with db(app) as s:
        assert s.scalar(select(Staff.password_hash).where(Staff.name == "李房管")) == stored


def test_staff_password_stdin_for_scripts_and_refusals(app, people):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["staff", "password", "张医生", "--password-stdin"],
                           input="scripted-pass-1\n")
    assert result.exit_code == 0, result.output
    with db(app) as s:
        assert verify_login(s, "张医生", "scripted-pass-1").name == "张医生"
        assert verify_login(s, "张医生", PASSWORD) is None
    for args, stdin, message in [
            (["张医生"], "short\n", "8 to 256 characters"),
            (["王不在"], "long-enough-1\n", "no active staff member named 王不在"),
            (["孙离职"], "long-enough-1\n", "no active staff member named 孙离职"),
            (["张医生"], " spaced-out-1\n", "must not start or end with a space")]:
        result = runner.invoke(args=["staff", "password", *args, "--password-stdin"],
                               input=stdin)
        assert result.exit_code == 1 and message in result.output, result.output


def test_homonyms_cannot_share_a_login(app, people):
    with db(app) as s:
        s.add(Staff(name="张医生", openid=oid("twin")))
    with db(app) as s, pytest.raises(PasswordError, match="2 active staff members"):
        set_password(s, "张医生", "whatever-123")


# ---- login, logout, sessions ---------------------------------------------------------------
def test_every_page_requires_login(client, people):
    for path in ("/console/", "/console/tickets", "/console/tickets/1", "/console/staff",
                 "/console/nothing-here"):
        response = client.get(path)
        assert response.status_code == 302, path
        assert response.location.startswith("/console/login"), path
    assert client.get("/console/tickets?view=mine").location == \
        "/console/login?next=/console/tickets?view%3Dmine"
    assert client.get("/console").status_code in (301, 302, 308)


def test_login_lands_on_tickets_with_a_safe_cookie(client, people):
    response = login(client, "李房管")
    assert response.status_code == 302 and response.location == "/console/"
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert client.get("/console/").location == "/console/tickets"
    html = page(client, "/console/tickets")
    assert "李房管" in html and "目前没有未办结的问题" in html and "急难愁盼" in html
    assert "工作人员</a>" not in html  # the supervisors' page is not in a staff nav


def test_login_follows_next_but_never_off_site(app, client, people):
    response = login(client, "李房管", next="/console/tickets?view=mine")
    assert response.location == "/console/tickets?view=mine"
    with app.test_request_context():
        for target in ("//evil.example/x", "https://evil.example/", "/wechat", "/console\\@x",
                       "/console//evil.example", None):
            assert safe_next(target) == "/console/", target


def test_wrong_password_unknown_name_inactive_and_no_password_look_the_same(app, client,
                                                                            people):
    with db(app) as s:
        s.add(Staff(name="钱无密", openid=oid("nopw")))
    for name, password in (("李房管", "wrong-password"), ("没这人", PASSWORD),
                           ("孙离职", PASSWORD), ("钱无密", ""), ("", PASSWORD)):
        response = login(client, name, password)
        assert response.status_code == 401, name
        assert "姓名或密码不对" in response.get_data(as_text=True)
        assert client.get("/console/tickets").status_code == 302
    # Full-width or padded names still find the person.
    assert login(client, " 李房管 ").status_code == 302


def test_failed_logins_are_throttled_per_name_and_client(app, client, people, caplog):
    caplog.set_level(logging.INFO)
    for _ in range(2):
        assert login(client, "李房管", "guess-guess").status_code == 401
    locked = login(client, "李房管", "guess-guess")
    assert locked.status_code == 429 and "登录失败次数太多" in locked.get_data(as_text=True)
    # While locked even the right password is refused from here; another name is not affected,
    # and 李房管 herself, at her own desk, is not locked out by someone else's guesses.
    assert login(client, "李房管").status_code == 429
    assert client.get("/console/tickets").status_code == 302
    other = app.test_client()
    assert login(other, "张医生").status_code == 302
    her_desk = app.test_client()
    assert login(her_desk, "李房管", environ_base={"REMOTE_ADDR": "10.0.0.7"}).status_code == 302
    # The test window is 2 seconds (a Redis expiry): poll until it lapses, never past 3 s.
    assert wait_for(lambda: login(client, "李房管").status_code == 302, seconds=3, every=0.1)
    assert "李房管" not in caplog.text and PASSWORD not in caplog.text and \
        "guess-guess" not in caplog.text
    assert "李**" in caplog.text  # the log says whose name, masked


def test_a_success_clears_the_name_failures():
    import fakeredis

    throttle = Throttle(fakeredis.FakeRedis(), {"console_login_max_failures": 3,
                                                "console_login_max_client_failures": 100})
    for _ in range(2):
        throttle.failed("李房管", "1.2.3.4")
    throttle.succeeded("李房管", "1.2.3.4")
    assert throttle.failed("李房管", "1.2.3.4") == 1
    assert throttle.blocked_for("李房管", "1.2.3.4") == 0
    throttle.failed("李房管", "1.2.3.4")
    throttle.failed("李房管", "1.2.3.4")
    assert 0 < throttle.blocked_for("李房管", "1.2.3.4") <= 15 * 60  # that name, that client
    assert throttle.blocked_for("李房管", "5.6.7.8") == 0           # not her own desk
    assert throttle.blocked_for("张医生", "1.2.3.4") == 0


def test_many_clients_guessing_one_name_lock_it():
    import fakeredis

    throttle = Throttle(fakeredis.FakeRedis(), {"console_login_max_name_failures": 6})
    for i in range(6):
        throttle.failed("李房管", f"10.0.0.{i}")
    assert throttle.blocked_for("李房管", "10.9.9.9") > 0


def test_without_redis_the_throttle_and_logout_fail_closed():
    import redis as redis_lib

    dead = redis_lib.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2,
                           socket_timeout=0.2)
    assert Throttle(dead, {}).blocked_for("李房管", "1.2.3.4") > 0


def test_behind_a_trusted_proxy_each_client_has_its_own_counter(make_app):
    app = make_app(trusted_proxies=1, extra={"console_login_max_failures": 3})
    with db(app) as s:
        s.add(Staff(name="李房管", openid=oid("housing"), on_duty=True))
        s.flush()
        set_password(s, "李房管", PASSWORD)
    for _ in range(3):
        response = login(app.test_client(), "李房管", "guess-guess",
                         headers={"X-Forwarded-For": "203.0.113.5"})
    assert response.status_code == 429
    assert login(app.test_client(), "李房管",
                 headers={"X-Forwarded-For": "198.51.100.9"}).status_code == 302


def test_one_client_trying_many_names_is_throttled_too():
    import fakeredis

    throttle = Throttle(fakeredis.FakeRedis(), {"console_login_max_client_failures": 4})
    for i in range(4):
        throttle.failed(f"名字{i}", "9.9.9.9")
    assert throttle.blocked_for("别的名字", "9.9.9.9") > 0
    assert throttle.blocked_for("别的名字", "8.8.8.8") == 0


def test_logout_needs_a_post_with_token_and_kills_the_cookie(client, people):
    login(client, "李房管")
    html = page(client, "/console/tickets")
    assert client.get("/console/logout").status_code == 405  # a link cannot log you out
    assert client.post("/console/logout", data={"csrf_token": "forged"}).status_code == 400
    assert client.get("/console/tickets").status_code == 200
    copied = client.get_cookie("session").value
    response = client.post("/console/logout", data={"csrf_token": token_of(html)})
    assert response.status_code == 302 and response.location == "/console/login?bye=1"
    assert "您已退出登录" in page(client, "/console/login?bye=1")
    assert client.get("/console/tickets").status_code == 302
    client.set_cookie("session", copied)  # a stolen copy of the old cookie
    assert client.get("/console/tickets").status_code == 302


def test_password_change_or_removal_ends_open_sessions(app, client, people):
    login(client, "李房管")
    assert client.get("/console/tickets").status_code == 200
    with db(app) as s:
        set_password(s, "李房管", "another-pass-7")
    assert client.get("/console/tickets").status_code == 302
    login(client, "李房管", "another-pass-7")
    assert client.get("/console/tickets").status_code == 200
    app.test_cli_runner().invoke(args=["staff", "remove", "李房管"])
    assert client.get("/console/tickets").status_code == 302
    assert login(client, "李房管", "another-pass-7").status_code == 401


def test_sessions_expire(make_app, tmp_path, people):
    path = tmp_path / "issue_categories.yaml"
    path.write_text(CONFIG, encoding="utf-8")
    app = make_app(extra={"issue_categories": str(path), "console_session_hours": 1})
    client = app.test_client()
    with time_machine.travel(MONDAY_9, tick=False):
        login(client, "李房管")
        assert client.get("/console/tickets").status_code == 200
    with time_machine.travel(MONDAY_9 + timedelta(minutes=61), tick=False):
        assert client.get("/console/tickets").status_code == 302


# ---- CSRF ----------------------------------------------------------------------------------
def test_posts_without_the_session_token_are_refused(app, client, wx, people):
    fresh = app.test_client()
    assert fresh.post("/console/login", data={"name": "李房管", "password": PASSWORD}) \
        .status_code == 400
    assert fresh.get("/console/tickets").status_code == 302  # not logged in by it
    n = report(wx, people.cadre)
    login(client, "李房管")
    other = app.test_client()
    login(other, "张医生")
    stolen = token_of(page(other, "/console/tickets"))  # valid, but another session's
    for token in ("", "x" * 43, stolen):
        response = client.post(f"/console/tickets/{n}/claim", data={"csrf_token": token})
        assert response.status_code == 400 and "表单已过期" in response.get_data(as_text=True)
    assert events(app, n) == [("created", None)]
    assert act(client, n, "claim").status_code == 302
    assert events(app, n) == [("created", None), ("claimed", "李房管")]


# ---- roles and headers ---------------------------------------------------------------------
def test_staff_page_is_for_supervisors_only(app, people):
    staff, boss = app.test_client(), app.test_client()
    login(staff, "李房管")
    login(boss, "赵主任")
    refused = staff.get("/console/staff")
    assert refused.status_code == 403 and "只对主管开放" in refused.get_data(as_text=True)
    html = page(boss, "/console/staff")
    assert "工作人员</a>" in html and "赵主任（主管）" in html
    assert "孙离职（已移除）" in html and html.count("已设密码") == 3


def test_console_pages_carry_security_headers(client, people):
    login(client, "李房管")
    response = client.get("/console/tickets")
    headers = response.headers
    assert headers["X-Frame-Options"] == "DENY" and headers["Cache-Control"] == "no-store"
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert client.get("/console/login").headers["X-Content-Type-Options"] == "nosniff"
    assert client.get("/console/tickets/999").status_code == 404


def test_in_production_the_cookie_is_secure_and_hsts_is_sent(make_app, tmp_path):
    app = make_app(env="production", allow_dev_defaults=True)
    client = app.test_client()
    response = client.get("/console/login")
    assert "max-age=" in response.headers["Strict-Transport-Security"]
    assert app.config["SESSION_COOKIE_SECURE"] is True
    assert "Strict-Transport-Security" not in make_app().test_client().get(
        "/console/login").headers


def test_a_nul_in_a_form_field_is_400_not_500(client, people):
    token = token_of(client.get("/console/login").get_data(as_text=True))
    response = client.post("/console/login", data={"name": "李房管\x00", "password": "x",
                                                   "csrf_token": token})
    assert response.status_code == 400


def test_another_features_pages_get_login_csrf_nav_and_roles(app, client, people):
    demo = Blueprint("demo_console", __name__, url_prefix="/console/demo")
    demo.add_url_rule("/report", "report", lambda: f"report for staff {user().id}",
                      methods=["GET", "POST"])
    demo.add_url_rule("/secret", "secret", lambda: "supervisors only")
    app.register_blueprint(demo)
    app.extensions["console_pages"].extend([
        ConsolePage("demo_console.report", "console/nav/staff.txt", order=5),
        ConsolePage("demo_console.secret", "console/nav/staff.txt", order=6,
                    role="supervisor")])
    assert client.get("/console/demo/report").location == \
        "/console/login?next=/console/demo/report"
    login(client, "李房管")
    assert client.get("/console/demo/report").get_data(as_text=True).startswith(
        "report for staff ")
    assert client.post("/console/demo/report", data={}).status_code == 400
    token = token_of(page(client, "/console/tickets"))
    assert client.post("/console/demo/report", data={"csrf_token": token}).status_code == 200
    assert client.get("/console/demo/report").headers["X-Frame-Options"] == "DENY"
    assert client.get("/console/demo/secret").status_code == 403
    assert client.get("/console/").location == "/console/demo/report"  # first in the nav
    html = page(client, "/console/tickets")
    assert html.index('href="/console/demo/report"') < html.index('href="/console/tickets"')
    assert 'href="/console/demo/secret"' not in html


# ---- the ticket list and SLA timers (time travel) -------------------------------------------
def _run_sla(app, now):
    yl = app.extensions["yinling"]
    spec = next(j for j in issue_jobs if j.name == "sla_escalation")
    return run_job(yl, spec, now)


def test_ticket_list_sorted_with_waiting_time_and_sla_timers(app, client, wx, people):
    with time_machine.travel(MONDAY_9, tick=False):
        normal = report(wx, people.cadre, category="2", text="楼道灯坏了")
    with time_machine.travel(MONDAY_9 + timedelta(minutes=5), tick=False):
        urgent = report(wx, people.cadre, category="1", text="老伴摔倒了", urgency="2")
    with time_machine.travel(MONDAY_9 + timedelta(minutes=10), tick=False):
        claimed = report(wx, people.cadre, category="3", text="想咨询待遇")
        wx.text(people.doctor, f"接单 {claimed}")
    with time_machine.travel(MONDAY_9 + timedelta(minutes=20), tick=False):
        login(client, "李房管")
        html = page(client, "/console/tickets")
    order = [int(n) for n in re.findall(r'<tr id="ticket-(\d+)"', html)]
    assert order == [urgent, normal, claimed]  # urgent first, then oldest first
    assert "共3件，其中待接单2件，超时1件" in html
    assert row_text(html, normal).split() == [
        f"{normal}号", "一般", "住房", "待接单", "—", "王建国", "20分钟",
        "接单时限还剩10分钟（3月2日", "09:30前）"]
    assert "紧急" in row_text(html, urgent) and "15分钟" in row_text(html, urgent)
    assert "超时5分钟未接单，15分钟后上报主管" in row_text(html, urgent)
    assert "处理中 张医生" in row_text(html, claimed)
    # Claimed at 09:10: one working day (450 min) = Tuesday 09:10.
    assert "回复时限还剩23小时50分（3月3日 09:10前）" in row_text(html, claimed)

    assert _run_sla(app, MONDAY_9 + timedelta(minutes=50)) == 2  # urgent escalated, normal pinged
    with time_machine.travel(MONDAY_9 + timedelta(minutes=50), tick=False):
        html = page(client, "/console/tickets")
        mine = page(client, "/console/tickets?view=mine")
    assert "超时35分钟未接单，已上报主管" in row_text(html, urgent)  # due 09:15
    assert "超时20分钟未接单，1小时10分后上报主管" in row_text(html, normal)
    assert 'class="sla-critical"' in html and 'class="sla-late"' in html
    assert "您手上没有在办的问题" in mine
    # Lunch and the evening do not count: at 17:40 the normal ticket is past 11:00.
    with time_machine.travel(MONDAY_9.replace(hour=17, minute=40), tick=False):
        html = page(client, "/console/tickets")
    assert "超时8小时10分未接单，已到上报主管时限" in row_text(html, normal)
    assert "超时" not in row_text(html, claimed)


def test_claimed_ticket_is_late_after_a_working_day_without_reply(app, client, wx, people):
    with time_machine.travel(MONDAY_9, tick=False):
        n = report(wx, people.cadre, category="2")
        wx.text(people.housing, f"接单 {n}")
    tuesday = datetime(2026, 3, 3, 10, 0, tzinfo=TZ)
    with time_machine.travel(tuesday, tick=False):
        login(client, "李房管")
        assert "超时1小时未回复反映人" in row_text(page(client, "/console/tickets"), n)
        wx.text(people.housing, f"回复 {n} 马上派人")
        assert "已回复反映人" in row_text(page(client, "/console/tickets"), n)
        mine = page(client, "/console/tickets?view=mine")
    assert f'id="ticket-{n}"' in mine and "李房管（我）" in mine


def test_sla_timer_units():
    policy = parse_policy(yaml.safe_load(CONFIG), TZ)
    t = Ticket(state="open", urgent=False, created_at=datetime(2026, 3, 2, 11, 50, tzinfo=TZ),
               escalated_at=None)
    timer = sla_timer(policy, t, datetime(2026, 3, 2, 12, 30, tzinfo=TZ))
    # 10 min before lunch, 20 after: the claim deadline is 13:50, whatever the wall clock.
    assert (timer.stage, timer.due.hour, timer.due.minute, timer.left_minutes) == \
        ("claim", 13, 50, 80)
    timer = sla_timer(policy, t, datetime(2026, 3, 2, 14, 0, tzinfo=TZ))
    assert (timer.stage, timer.late_minutes, timer.level) == ("escalate", 10, "late")
    t.state = "resolved"
    assert sla_timer(policy, t, datetime(2026, 3, 2, 14, 0, tzinfo=TZ)).stage == "none"


# ---- one ticket: history and actions -------------------------------------------------------
def test_ticket_page_shows_the_whole_history(app, client, wx, people):
    with time_machine.travel(MONDAY_9, tick=False):
        n = report(wx, people.family, category="2", text="厨房漏水<script>x</script>")
    with time_machine.travel(MONDAY_9 + timedelta(minutes=3), tick=False):
        wx.text(people.cadre, f"补充 {n} 楼上也在漏")
        wx.text(people.housing, f"接单 {n}")
        wx.text(people.housing, f"回复 {n} 下午上门")
        wx.text(people.housing, f"转办 {n} 张医生")
    with time_machine.travel(MONDAY_9 + timedelta(minutes=30), tick=False):
        login(client, "张医生")
        html = page(client, f"/console/tickets/{n}")
    assert f"{n}号 住房" in html and "张医生处理中" not in html and "处理中" in html
    assert "王建国（13800001001，幸福社区），家属代为反映" in html and "幸福路1号" in html
    assert "&lt;script&gt;" in html and "<script>x" not in html  # escaped
    history = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ",
                                         re.search(r'<ol class="history".*?</ol>', html,
                                                   re.S).group(0)))
    steps = ["3月2日 09:00 家属（代王建国） 反映问题，通知了李房管",
             "3月2日 09:03 王建国 补充：楼上也在漏",
             "3月2日 09:03 李房管 接单",
             "3月2日 09:03 李房管 回复：下午上门",
             "3月2日 09:03 李房管 转办：李房管 → 张医生"]
    positions = [history.find(s) for s in steps]
    assert -1 not in positions and positions == sorted(positions), history
    assert "可直接聊天送达" in html and "已回复反映人" in html


def test_claim_reply_resolve_from_the_web_same_events_and_messages(app, client, wx, people):
    n = report(wx, people.cadre, category="2")
    login(client, "李房管")
    response = act(client, n, "claim")
    assert response.status_code == 302 and response.location == f"/console/tickets/{n}"
    assert "已接单" in page(client, f"/console/tickets/{n}")
    assert any("已由工作人员李房管接手" in b for b in sent(app, people.cadre))
    assert act(client, n, "reply", "您好，下午三点上门").status_code == 302
    assert any("您好，下午三点上门" in b for b in sent(app, people.cadre))
    assert any("您好，下午三点上门" in b for b in sent(app, people.family))
    assert act(client, n, "resolve", "已换好灯泡").status_code == 302
    assert events(app, n) == [("created", None), ("claimed", "李房管"),
                              ("replied", "李房管"), ("resolved", "李房管")]
    assert any("已换好灯泡" in b for b in sent(app, people.cadre))
    assert wx.pushes(people.cadre)  # really delivered (sandbox), like a chat action
    # The reporter was asked to rate, exactly as after `办结` in chat.
    assert "5分" in wx.text(people.cadre, "5")
    assert events(app, n)[-1] == ("rated", None)
    html = page(client, f"/console/tickets/{n}")
    assert "已办结" in html and "评价5分" in html and 'id="reopen"' in html
    assert act(client, n, "reopen", "灯又不亮了").status_code == 302
    assert events(app, n)[-1] == ("reopened", "李房管")


def test_web_actions_refuse_like_the_chat(app, client, wx, people):
    n = report(wx, people.cadre, category="2")
    wx.text(people.doctor, f"接单 {n}")
    login(client, "李房管")
    html = page(client, f"/console/tickets/{n}")
    assert "只有负责人或主管可以" in html and 'id="resolve"' not in html
    token = token_of(html)
    taken = act(client, n, "claim", token=token)
    assert taken.status_code == 409
    assert re.search(r"已由张医生在3?\d*月\d+日 \d\d:\d\d接单了", taken.get_data(as_text=True))
    refused = act(client, n, "resolve", "我来办结", token=token)
    assert refused.status_code == 409 and "由张医生负责" in refused.get_data(as_text=True)
    empty = app.test_client()
    login(empty, "张医生")
    answer = act(empty, n, "reply", "   ")
    assert answer.status_code == 409 and "请写上要回复的话" in answer.get_data(as_text=True)
    unknown = act(empty, n, "transfer", "王不在")
    assert "没有找到叫“王不在”的工作人员" in unknown.get_data(as_text=True)
    assert act(empty, n, "delete").status_code == 404
    assert act(empty, 999, "claim", token=token_of(page(empty, "/console/tickets"))) \
        .status_code == 404
    assert events(app, n) == [("created", None), ("claimed", "张医生")]
    # A supervisor may act on anyone's ticket, as in chat.
    boss = app.test_client()
    login(boss, "赵主任")
    assert act(boss, n, "transfer", "李房管").status_code == 302
    assert events(app, n)[-1] == ("transferred", "赵主任")
    with db(app) as s:
        assert s.get(Ticket, n).assignee.name == "李房管"
