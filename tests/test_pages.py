"""Pages a push links to (/m/<token>, PRODUCT.md 7.6) with the Flask test client: the template
push carries a signed link, WeChat's silent web login (the fake's) tells who opens it, the
recipient and the family answer through the chat's services, a stranger reads a masked page,
CSRF, tampered and expired links."""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import pytest
import requests
import time_machine
from sqlalchemy import select

from bot import pages
from bot.settings import SettingsError, load_settings
from models import Binding, Cadre, Delivery, Follower, Staff
from models.festivals import AWAY, TIME, FestivalVisit
from models.issues import Ticket
from tests.conftest import db, drain, oid, token_of
from tests.fake_wechat import live_settings
from tests.wx import WeChat

TZ = ZoneInfo("Asia/Shanghai")
PUBLIC = "https://yinling.example.cn"
DUTY = "0415-2345678"


def festival_config(day) -> str:
    """One solar festival on `day`, its visit notice 7 days before."""
    return f"""
signature: 测试老干部局
days_before: 7
birthdays: {{greeting: 生日快乐}}
festivals:
  - {{key: elders_day, name: 敬老日, calendar: solar, month: {day.month}, day: {day.day},
     notice: "{{name}}（{{date}}）将至，组织将于{{visit_from}}至{{visit_to}}期间上门走访慰问。",
     greeting: 节日快乐！}}
"""


def today():
    return datetime.now(TZ).date()


@pytest.fixture
def page_app(make_app, fake, tmp_path):
    """An app that sends to the fake API, with a public address and a festival a week ahead."""
    path = tmp_path / "festivals.yaml"
    path.write_text(festival_config(today() + timedelta(days=7)), encoding="utf-8")
    return make_app(**live_settings(fake, public_url=PUBLIC, duty_phone=DUTY,
                                    extra={"festivals": str(path)}))


@dataclass
class People:
    cadre: str
    family: str
    stranger: str
    staff: str
    cadre_id: int = 0


@pytest.fixture
def people(page_app) -> People:
    """王建国 (bound himself), his daughter (family), a stranger and an on-duty staff member."""
    p = People(oid("cadre"), oid("family"), oid("stranger"), oid("staff"))
    with db(page_app) as s:
        wang = Cadre(name="王建国", phone="13800001001", community="幸福社区")
        s.add(wang)
        s.flush()
        p.cadre_id = wang.id
        s.add_all([Binding(openid=p.cadre, cadre_id=wang.id, relation="self"),
                   Binding(openid=p.family, cadre_id=wang.id, relation="family"),
                   Follower(openid=p.stranger),
                   Staff(name="李房管", openid=p.staff, on_duty=True)])
    return p


def notice_urls(app, fake, people) -> dict[str, str]:
    """Run today's visit notices; the page link each template message carried, by openid."""
    result = app.test_cli_runner().invoke(
        args=["jobs", "run", "festival_notices", "--now", f"{today()}T09:00"])
    assert result.exit_code == 0 and "festival_notices: 2" in result.output, result.output
    drain(app)
    urls = {}
    for who in (people.cadre, people.family):
        [sent] = fake.messages(who, api="template")
        urls[who] = sent.payload["url"]
    return urls


def visit(app) -> FestivalVisit:
    with db(app) as s:
        row = s.scalar(select(FestivalVisit))
        s.expunge_all()
    return row


def open_as(client, fake, url: str, openid: str):
    """Open a page link as `openid`: the silent login round trip through the fake, then the page."""
    path = urlsplit(url).path
    first = client.get(path)
    assert first.status_code == 302
    authorize = first.location
    assert authorize.startswith(fake.base + "connect/oauth2/authorize?")
    assert authorize.endswith("#wechat_redirect")
    query = parse_qs(urlsplit(authorize).query)
    assert (query["scope"], query["appid"], query["redirect_uri"]) == (
        ["snsapi_base"], [fake.appid], [PUBLIC + path])
    fake.visitor = openid
    back = requests.get(authorize, allow_redirects=False, timeout=5)
    assert back.status_code == 302
    landing = urlsplit(back.headers["Location"])
    assert f"{landing.scheme}://{landing.netloc}{landing.path}" == PUBLIC + path
    logged_in = client.get(f"{landing.path}?{landing.query}")
    assert logged_in.status_code == 302 and logged_in.location == path
    assert fake.logins[-1] == openid
    page = client.get(path)
    assert page.status_code == 200
    return page


def tap(client, url: str, page, **form):
    """Post one of the page's buttons with the page's CSRF token; the page that follows."""
    path = urlsplit(url).path
    answer = client.post(path, data={"csrf_token": token_of(page.get_data(as_text=True)),
                                     **form})
    assert answer.status_code == 303 and answer.location == path
    return client.get(path)


def text_of(response) -> str:
    return response.get_data(as_text=True)


# ---- the link on the push ----------------------------------------------------------------------
def test_a_template_push_carries_a_signed_link_to_its_page(page_app, fake, people):
    urls = notice_urls(page_app, fake, people)
    with db(page_app) as s:
        ids = dict(s.execute(select(Delivery.openid, Delivery.id)).all())
    for who, url in urls.items():
        assert url.startswith(PUBLIC + "/m/")
        token = url.removeprefix(PUBLIC + "/m/")
        assert pages.delivery_of(page_app.extensions["yinling"].settings, token) == ids[who]


def test_without_a_public_address_pushes_carry_no_link(make_app, fake, openid):
    app = make_app(**live_settings(fake))
    yl = app.extensions["yinling"]
    with db(app) as s:
        pushed = yl.outbox.push(s, openid, "core/raw", {"text": "您好"})
    yl.outbox.after_commit([pushed])
    drain(app)
    [sent] = fake.messages(openid, api="template")
    assert "url" not in sent.payload


# ---- the recipient, the family, a stranger -----------------------------------------------------
def test_the_recipient_opens_the_page_and_answers_with_a_button(page_app, fake, people):
    url = notice_urls(page_app, fake, people)[people.cadre]
    client = page_app.test_client()
    page = open_as(client, fake, url, people.cadre)
    html = text_of(page)
    assert 'lang="zh-CN"' in html and "<script" not in html
    assert "尊敬的王建国同志" in html and "敬老日" in html and "测试老干部局" in html
    first = today() + timedelta(days=1)
    assert f"{first.month}月{first.day}日" in html and 'value="away"' in html
    assert f'href="tel:{DUTY.replace("-", "")}"' in html
    assert "已记录" not in html

    after = tap(client, url, page, answer="away")
    assert "已记录：节日期间不在家" in text_of(after)
    row = visit(page_app)
    assert (row.answer, row.answered_by, row.on_behalf) == (AWAY, people.cadre, False)

    after = tap(client, url, after, answer=f"{first.isoformat()}:pm")   # changes their mind
    assert f"已记录：方便走访的时间是{first.month}月{first.day}日下午" in text_of(after)
    row = visit(page_app)
    assert (row.answer, row.preferred_time) == (TIME, f"{first.month}月{first.day}日下午")


def test_a_time_in_their_own_words_when_no_button_fits(page_app, fake, people):
    url = notice_urls(page_app, fake, people)[people.cadre]
    client = page_app.test_client()
    page = open_as(client, fake, url, people.cadre)
    assert 'id="other-time"' in text_of(page)
    after = tap(client, url, page, answer="other", other=" 周六下午\n三点以后 ")
    assert "已记录：方便走访的时间是周六下午 三点以后" in text_of(after)
    assert (visit(page_app).answer, visit(page_app).preferred_time) == (TIME, "周六下午 三点以后")
    empty = tap(client, url, after, answer="other", other="   ")
    assert "不能选" in text_of(empty)                   # nothing written: nothing changes
    assert visit(page_app).preferred_time == "周六下午 三点以后"


def test_a_forwarded_page_lets_the_family_answer_for_the_cadre(page_app, fake, people):
    url = notice_urls(page_app, fake, people)[people.cadre]   # the cadre's own link
    client = page_app.test_client()
    page = open_as(client, fake, url, people.family)
    assert "尊敬的王建国同志" in text_of(page)
    after = tap(client, url, page, answer="away")
    assert "已记录：节日期间不在家，这次不上门打扰（家属代为回复）" in text_of(after)
    row = visit(page_app)
    assert (row.answer, row.answered_by, row.on_behalf) == (AWAY, people.family, True)


def test_a_stranger_reads_a_masked_page_and_cannot_answer(page_app, fake, people):
    url = notice_urls(page_app, fake, people)[people.cadre]
    owner = page_app.test_client()
    tap(owner, url, open_as(owner, fake, url, people.cadre), answer="away")

    client = page_app.test_client()
    html = text_of(open_as(client, fake, url, people.stranger))
    assert "王建国" not in html and "尊敬的王**同志" in html, html[-900:]
    assert "只能查看" in html and "<form" not in html and "已记录" not in html
    refused = client.post(urlsplit(url).path, data={"csrf_token": token_of(
        text_of(owner.get(urlsplit(url).path))), "answer": "away"})
    assert refused.status_code == 400   # another session's token
    with client.session_transaction() as session:   # even with this session's own token
        session[pages.CSRF_KEY] = "t" * 40
    refused = client.post(urlsplit(url).path, data={"csrf_token": "t" * 40,
                                                    "answer": f"{today()}:am"})
    assert refused.status_code == 403 and "本人或家属" in text_of(refused)
    assert visit(page_app).answer == AWAY


def test_an_answer_without_the_csrf_token_is_refused(page_app, fake, people):
    url = notice_urls(page_app, fake, people)[people.cadre]
    client = page_app.test_client()
    open_as(client, fake, url, people.cadre)
    path = urlsplit(url).path
    for form in ({"answer": "away"}, {"answer": "away", "csrf_token": "forged" * 8}):
        refused = client.post(path, data=form)
        assert refused.status_code == 400 and "重新点开" in text_of(refused)
    assert visit(page_app).answer is None


def test_an_answer_the_page_does_not_offer_changes_nothing(page_app, fake, people):
    url = notice_urls(page_app, fake, people)[people.cadre]
    client = page_app.test_client()
    page = open_as(client, fake, url, people.cadre)
    after = tap(client, url, page, answer="2000-01-01:am")
    assert "不能选了" in text_of(after)
    assert visit(page_app).answer is None


def test_a_failed_web_login_shows_the_read_only_page_without_a_loop(page_app, fake, people):
    url = notice_urls(page_app, fake, people)[people.cadre]
    client = page_app.test_client()
    page = client.get(urlsplit(url).path + "?code=code-unknown&state=not-ours")
    assert page.status_code == 200 and "只能查看" in text_of(page)
    assert "王建国" not in text_of(page)


# ---- tampered and expired links ----------------------------------------------------------------
def test_a_tampered_link_gets_a_kind_page(page_app, fake, people):
    url = notice_urls(page_app, fake, people)[people.cadre]
    token = url.rsplit("/", 1)[1]
    altered = token[:-2] + ("AA" if token[-2:] != "AA" else "BB")
    other_secret = load_settings({"secret_key": "another-secret-key-1234"}, environ={})
    for bad in (altered, "not-a-token", pages.page_token(other_secret, 1)):
        page = page_app.test_client().get(f"/m/{bad}")
        assert page.status_code == 410
        assert "这个链接打不开" in text_of(page) and "公众号的对话里" in text_of(page)
        assert "Traceback" not in text_of(page)
    assert page_app.test_client().post(f"/m/{altered}").status_code == 410


def test_a_link_works_for_30_days_then_gets_a_kind_page(page_app, fake, people):
    url = notice_urls(page_app, fake, people)[people.cadre]
    path = urlsplit(url).path
    now = datetime.now(TZ)
    with time_machine.travel(now + timedelta(days=29), tick=False):
        assert page_app.test_client().get(path).status_code == 302   # on to the login
    with time_machine.travel(now + timedelta(days=31), tick=False):
        page = page_app.test_client().get(path)
    assert page.status_code == 410 and "这个链接已经过期了" in text_of(page)
    assert "公众号的对话里" in text_of(page) and f"tel:{DUTY.replace('-', '')}" in text_of(page)


# ---- a resolved ticket: rate it ----------------------------------------------------------------
def resolved_ticket(app, people) -> int:
    """王建国 reports through the chat; 李房管 resolves it; the ticket number."""
    wx = WeChat(app)
    for answer in ("反映问题", "2", "楼道灯坏了一个月", "1"):
        wx.text(people.cadre, answer)
    number = int(re.search(r"问题编号是 (\d+) 号", wx.text(people.cadre, "1")).group(1))
    wx.text(people.staff, f"接单 {number}")
    assert "办结" in wx.text(people.staff, f"办结 {number} 已换灯，物业电话13912345678")
    return number


def page_of(app, openid: str, template: str) -> str:
    """The page link of the push of this template to this openid."""
    with db(app) as s:
        delivery_id = s.scalar(select(Delivery.id).where(
            Delivery.openid == openid, Delivery.template == template))
    return pages.page_url(app.extensions["yinling"].settings, delivery_id)


def resolved_url(app, openid: str) -> str:
    return page_of(app, openid, "issues/reporter_resolved")


def test_the_reporter_rates_a_resolved_ticket_with_a_button(page_app, fake, people):
    number = resolved_ticket(page_app, people)
    url = resolved_url(page_app, people.cadre)
    client = page_app.test_client()
    page = open_as(client, fake, url, people.cadre)
    html = text_of(page)
    assert f"{number}号问题" in html and "李房管" in html and 'href="tel:13912345678"' in html
    assert all(f'id="score-{n}"' in html for n in range(1, 6))
    after = tap(client, url, page, score="2")
    assert f"已记录：{number}号问题的办理打了2分" in text_of(after)
    assert 'id="score-' not in text_of(after)   # once per resolution
    with db(page_app) as s:
        assert s.get(Ticket, number).rating == 2
        follower = s.scalar(select(Follower).where(Follower.openid == people.cadre))
        assert follower.rating_ticket_id is None   # the chat no longer asks
        low = s.scalars(select(Delivery.template).where(Delivery.openid == people.staff)).all()
    assert "issues/staff_low_rating" in low   # the same service: staff hear of a low rating
    reply = WeChat(page_app).text(people.cadre, f"评价 {number} 5")
    assert "已经打过分了（2分）" in reply


def test_a_stranger_sees_the_ticket_with_names_and_phones_masked(page_app, fake, people):
    resolved_ticket(page_app, people)
    url = resolved_url(page_app, people.cadre)
    client = page_app.test_client()
    html = text_of(open_as(client, fake, url, people.stranger))
    assert "李房管" not in html and "李**" in html
    assert "13912345678" not in html and "139****5678" in html
    assert 'id="score-' not in html and "只能查看" in html


def test_family_rates_through_a_forwarded_page(page_app, fake, people):
    number = resolved_ticket(page_app, people)
    url = resolved_url(page_app, people.cadre)
    client = page_app.test_client()
    after = tap(client, url, open_as(client, fake, url, people.family), score="5")
    assert f"已记录：{number}号问题的办理打了5分" in text_of(after)
    with db(page_app) as s:
        assert s.get(Ticket, number).rating == 5


# ---- other news of a ticket: add a note ----------------------------------------------------------
def claimed_url(app, people) -> tuple[int, str]:
    """王建国 reports; 李房管 takes it: (number, the page link of the 'taken' news to him)."""
    wx = WeChat(app)
    for answer in ("反映问题", "2", "楼道灯坏了一个月", "1"):
        wx.text(people.cadre, answer)
    number = int(re.search(r"问题编号是 (\d+) 号", wx.text(people.cadre, "1")).group(1))
    wx.text(people.staff, f"接单 {number}")
    return number, page_of(app, people.cadre, "issues/reporter_claimed")


def test_the_reporter_writes_to_the_staff_from_a_tickets_news(page_app, fake, people):
    from models.issues import TicketEvent

    number, url = claimed_url(page_app, people)
    client = page_app.test_client()
    page = open_as(client, fake, url, people.cadre)
    assert 'id="note-text"' in text_of(page) and "问题办理进展" in text_of(page)
    after = tap(client, url, page, note="  灯还是不亮，\n晚上下楼看不见  ")
    assert "已经转给工作人员" in text_of(after)
    with db(page_app) as s:
        notes = s.scalars(select(TicketEvent.text).where(
            TicketEvent.ticket_id == number, TicketEvent.kind == "note")).all()
        told = s.scalars(select(Delivery.template).where(Delivery.openid == people.staff)).all()
    assert notes == ["灯还是不亮， 晚上下楼看不见"]
    assert "issues/staff_note" in told          # the same service as the chat's 补充
    empty = tap(client, url, after, note="   ")
    assert "不能选" in text_of(empty)            # nothing written: nothing sent


def test_a_stranger_cannot_write_on_a_forwarded_tickets_news(page_app, fake, people):
    _, url = claimed_url(page_app, people)
    client = page_app.test_client()
    page = open_as(client, fake, url, people.stranger)
    assert 'id="note-text"' not in text_of(page) and "只能查看" in text_of(page)
    with client.session_transaction() as session:   # with this session's own token
        session[pages.CSRF_KEY] = "t" * 40
    refused = client.post(urlsplit(url).path, data={"csrf_token": "t" * 40, "note": "我是别人"})
    assert refused.status_code == 403


def test_a_staff_alert_leads_to_the_tickets_console_page_behind_the_login(page_app, fake,
                                                                           people):
    from bot.console.auth import set_password
    from tests.conftest import PASSWORD, logged_in

    number, _ = claimed_url(page_app, people)
    with db(page_app) as s:
        set_password(s, "李房管", PASSWORD)
    url = page_of(page_app, people.staff, "issues/staff_new")
    client = page_app.test_client()
    first = client.get(urlsplit(url).path)
    assert first.status_code == 302 and first.location == f"/console/tickets/{number}"
    gate = client.get(first.location)
    assert gate.status_code == 302 and "/console/login" in gate.location   # staff only
    logged_in(client)
    page = client.get(f"/console/tickets/{number}")
    assert page.status_code == 200 and "楼道灯坏了一个月" in text_of(page)


# ---- a class reminder: leave for one session, or give the course up ----------------------------
def class_reminder_url(app, people) -> tuple[int, str]:
    """A course meeting tomorrow at 09:00 with 王建国 enrolled; the evening reminder's link."""
    tomorrow = today() + timedelta(days=1)
    later = tomorrow + timedelta(days=7)
    runner = app.test_cli_runner()
    made = runner.invoke(args=["course", "create", "书法班", "--venue", "活动中心三楼",
                               "--capacity", "5", "--deadline", str(today()),
                               "--session", f"{tomorrow} 09:00", "--session", f"{later} 09:00"])
    assert made.exit_code == 0, made.output
    number = int(re.search(r"course (\d+) created", made.output).group(1))
    assert "报名成功" in WeChat(app).text(people.cadre, f"报名 {number}")
    ran = runner.invoke(args=["jobs", "run", "class_reminders", "--now", f"{today()}T18:00"])
    assert ran.exit_code == 0, ran.output
    return number, page_of(app, people.cadre, "courses/reminder")


def test_a_class_reminder_page_takes_leave_and_the_roster_shows_it(page_app, fake, people):
    from handlers.courses import service as courses

    number, url = class_reminder_url(page_app, people)
    client = page_app.test_client()
    page = open_as(client, fake, url, people.family)      # the daughter, for her father
    assert 'id="leave"' in text_of(page) and 'id="cancel"' in text_of(page)
    after = tap(client, url, page, answer="leave")
    assert "已记录：这次课请假" in text_of(after) and 'id="leave"' not in text_of(after)
    with db(page_app) as s:
        [row] = courses.roster(s, number, TZ)
    assert row.state == "enrolled" and row.leave is not None   # the seat is kept
    assert row.leave.date() == today() + timedelta(days=1)


def test_a_course_refusal_reads_on_a_page_without_the_chats_values():
    """A page shows a feature's refusal with the service's values only (no course list)."""
    from bot.render import Renderer
    from handlers.courses.service import Refusal

    render = Renderer()
    for code in ("finished", "not_signed_up", "deadline_passed", "busy"):
        refusal = Refusal(code, n=3, name="书法班", deadline=today())
        assert "书法班" in render(refusal.template, code=code, **refusal.values) or code == "busy"


def test_a_class_reminder_page_cancels_after_a_second_tap(page_app, fake, people):
    number, url = class_reminder_url(page_app, people)
    client = page_app.test_client()
    page = open_as(client, fake, url, people.cadre)
    assert "<details" in text_of(page)                     # two taps, no pop-up
    after = tap(client, url, page, answer="cancel")
    assert "已取消报名" in text_of(after) and 'id="cancel"' not in text_of(after)
    assert "没有报名" in WeChat(page_app).text(people.cadre, f"取消报名 {number}")


# ---- settings ----------------------------------------------------------------------------------
def test_page_settings_defaults_and_checks():
    s = load_settings(environ={})
    assert (s.public_url, s.page_days, s.wechat_oauth_base) == (
        "", 30, "https://open.weixin.qq.com/")
    s = load_settings(environ={"YINLING_PUBLIC_URL": PUBLIC, "YINLING_PAGE_DAYS": "7",
                               "WECHAT_OAUTH_BASE": "http://127.0.0.1:9/"})
    assert (s.public_url, s.page_days, s.wechat_oauth_base) == (PUBLIC, 7, "http://127.0.0.1:9/")
    assert pages.page_url(s, 3).startswith(PUBLIC + "/m/")
    for bad in ({"YINLING_PUBLIC_URL": "yinling.example.cn"},
                {"YINLING_PUBLIC_URL": PUBLIC + "/?x=1"}, {"YINLING_PAGE_DAYS": "0"},
                {"WECHAT_OAUTH_BASE": "open.weixin.qq.com"}):
        with pytest.raises(SettingsError):
            load_settings(environ=bad)
