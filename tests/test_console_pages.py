"""The feature pages of the staff console (PRODUCT.md §9): fee collection by branch with the
unpaid list, course rosters with the .xlsx export, broadcast reports, festival visit answers.
Data is made the way staff and cadres make it (CLI imports, chat through the real webhook,
jobs run by time travel); pages are read with the Flask test client after a real login."""
from __future__ import annotations

import csv
import io
import logging
import re
import uuid
from datetime import datetime, timedelta, timezone
from urllib.parse import quote
from zoneinfo import ZoneInfo

import pytest
import time_machine
from openpyxl import load_workbook
from sqlalchemy import update

from handlers.broadcasts.web import first_words
from bot.console.auth import set_password
from handlers.courses.service import CourseView
from handlers.courses.web import disposition, download_name, split_courses
from handlers.fees.web import branch_key, chosen_period
from models import Binding, Cadre, Delivery, Staff
from models.broadcasts import Broadcast
from models.groups import BroadcastGroup, GroupMember
from tests.conftest import PASSWORD, db, logged_in, oid, page, token_of
from tests.wx import WeChat

TZ = ZoneInfo("Asia/Shanghai")
MARCH_10 = datetime(2026, 3, 10, 10, 0, tzinfo=TZ)
FEES = """
reminder:
  time: "09:30"
  step_days: [5, 15, 25]
stats_fee_types: []
how_to_pay: |
  到所在党支部交给支部委员。
"""
FESTIVALS = """
signature: 测试老干部局
days_before: 7
birthdays:
  greeting: 今天是您{age}岁生日，祝您生日快乐！
festivals:
  - {key: new_year_eve, name: 除夕, calendar: lunar, month: 12, day: last, visit: false,
     greeting: "{name}快乐！"}
  - {key: mid_autumn, name: 中秋节, aliases: [中秋], calendar: lunar, month: 8, day: 15,
     notice: "中秋节将至，组织将于{visit_from}至{visit_to}期间上门走访慰问。",
     greeting: "{name}快乐！"}
  - {key: double_ninth, name: 重阳节, calendar: lunar, month: 9, day: 9, days_before: 10,
     notice: "重阳节将至，组织将于{visit_from}至{visit_to}期间上门走访慰问。",
     greeting: 重阳快乐！}
"""
WANG, ZHAO, LI, SUN = "13800001001", "13800001002", "13800001003", "13800001004"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@pytest.fixture
def app(make_app, tmp_path):
    """The app with this test's fee and festival configuration."""
    fees, festivals = tmp_path / "fees.yaml", tmp_path / "festivals.yaml"
    fees.write_text(FEES, encoding="utf-8")
    festivals.write_text(FESTIVALS, encoding="utf-8")
    return make_app(extra={"fees_config": str(fees), "festivals": str(festivals)})


@pytest.fixture
def people(app) -> dict:
    """Four cadres in two branches (one without), three bound (one with family), staff."""
    return make_people(app)


def make_people(app) -> dict:
    """The story's people on an app: openids, and cadre ids as `<name>_id`."""
    o = {t: oid(t) for t in ("wang", "family", "zhao", "li", "staff")}
    with db(app) as s:
        cadres = {"wang": Cadre(name="王建国", phone=WANG, branch="第一党支部",
                                community="幸福社区"),
                  "zhao": Cadre(name="赵德顺", phone=ZHAO, branch="第一党支部",
                                community="光明社区"),
                  "li": Cadre(name="李秀英", phone=LI, branch="第二党支部"),
                  "sun": Cadre(name="孙老", phone=SUN)}
        s.add_all(cadres.values())
        s.flush()
        s.add_all([Binding(openid=o["wang"], cadre_id=cadres["wang"].id, relation="self"),
                   Binding(openid=o["family"], cadre_id=cadres["wang"].id, relation="family"),
                   Binding(openid=o["zhao"], cadre_id=cadres["zhao"].id, relation="self"),
                   Binding(openid=o["li"], cadre_id=cadres["li"].id, relation="self"),
                   Staff(name="李房管", openid=o["staff"], on_duty=True)])
        s.flush()
        set_password(s, "李房管", PASSWORD)
        o.update({f"{k}_id": c.id for k, c in cadres.items()})
    return o


def text_of(html: str, element_id: str) -> str:
    """The visible text of the element with this id (tags dropped, spaces squeezed)."""
    m = re.search(rf'<(\w+)[^>]*\bid="{element_id}"[^>]*>(.*?)</\1>', html, re.S)
    assert m, element_id
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", m.group(2))).strip()


def rows_of(html: str, table_id: str) -> list[str]:
    """The text of each body row of a table."""
    body = re.search(rf'<table[^>]*id="{table_id}".*?<tbody>(.*?)</tbody>', html, re.S)
    assert body, table_id
    return [re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", r)).strip()
            for r in re.findall(r"<tr[^>]*>(.*?)</tr>", body.group(1), re.S)]


def cli(app, *args):
    """Invoke a `flask --app bot …` command, asserting success."""
    result = app.test_cli_runner().invoke(args=list(args))
    assert result.exit_code == 0, result.output
    return result.output


# ---- every page: login, nav, 404 -------------------------------------------------------------
NEW_PAGES = ["/console/fees/", "/console/fees/branch?period=2026-03&name=x",
             "/console/courses/", "/console/courses/1", "/console/courses/1/roster.xlsx",
             "/console/broadcasts/", "/console/broadcasts/1", "/console/festivals/",
             "/console/festivals/?f=mid_autumn"]


def test_every_new_page_requires_login(client, people):
    for path in NEW_PAGES:
        response = client.get(path)
        assert response.status_code == 302, path
        assert response.location.startswith("/console/login?next="), path
        assert response.headers["Cache-Control"] == "no-store"
    logged_in(client)
    html = page(client, "/console/tickets")
    for label, path in (("党费收缴", "/console/fees/"), ("课程名单", "/console/courses/"),
                        ("群发记录", "/console/broadcasts/"), ("节日走访", "/console/festivals/")):
        assert f'<a href="{path}">{label}</a>' in html, label
    assert html.index("急难愁盼</a>") < html.index("党费收缴") < html.index("课程名单") < \
        html.index("群发记录") < html.index("节日走访")


def test_login_sends_staff_back_to_the_page_they_asked_for(client, people):
    target = "/console/fees/?period=2026-02"
    response = client.get(target)
    token = token_of(client.get(response.location).get_data(as_text=True))
    done = client.post("/console/login", data={"name": "李房管", "password": PASSWORD,
                                               "csrf_token": token, "next": target})
    assert done.location == target
    assert "2026年2月" in page(client, target)


@pytest.mark.parametrize("path", ["/console/courses/999", "/console/courses/999/roster.xlsx",
                                  "/console/broadcasts/999", "/console/festivals/?f=nope",
                                  "/console/festivals/?f=new_year_eve",
                                  "/console/fees/branch?period=2026-03&name=没有这个支部",
                                  "/console/fees/branch?period=2026-03",
                                  "/console/fees/branch?period=明年&name=第一党支部",
                                  "/console/courses/abc", "/console/fees/nothing"])
def test_unknown_ids_get_the_console_404_page(client, people, path):
    logged_in(client)
    response = client.get(path)
    assert response.status_code == 404
    html = response.get_data(as_text=True)
    assert "没有找到" in html and "回到工作台" in html and "李房管" in html


# ---- fees ------------------------------------------------------------------------------------
def ledger(app, tmp_path, rows):
    """Import ledger rows with `fees import` (the staff's way in)."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["手机号", "费用类型", "期间", "金额", "已缴", "缴费日期"])
    writer.writerows(rows)
    path = tmp_path / f"ledger-{uuid.uuid4().hex[:6]}.csv"
    path.write_bytes(buf.getvalue().encode("utf-8-sig"))
    assert "rejected 0" in cli(app, "fees", "import", str(path))


@pytest.fixture
def fees(app, tmp_path, people, wx):
    """March: 第一党支部 1 of 2 paid (赵 also owes February), 第二党支部 paid in chat by staff,
    孙老 (no branch) paid; February: only 赵's unpaid item."""
    ledger(app, tmp_path, [
        [WANG, "党费", "2026-03", "50", "是", "2026-03-02"],
        [ZHAO, "党费", "2026-03", "30", "否", ""],
        [ZHAO, "活动费", "2026-03", "12.5", "否", ""],
        [ZHAO, "党费", "2026-02", "30", "否", ""],
        [LI, "党费", "2026-03", "40", "否", ""],
        [SUN, "党费", "2026-03", "20", "是", "2026-03-03"],
    ])
    with time_machine.travel(MARCH_10, tick=False):
        assert "已登记：李秀英" in wx.text(people["staff"], f"已缴 {LI} 2026-03")
    return people


def test_fee_branches_for_the_current_month_lowest_rate_first_with_totals(client, fees):
    with time_machine.travel(MARCH_10, tick=False):
        logged_in(client)
        html = page(client, "/console/fees/")
    assert "<h1>党费收缴 · 2026年3月</h1>" in html
    rows = rows_of(html, "branches")
    assert rows == ["第一党支部 1/3项 33% 92.50元 50.00元 42.50元",
                    "第二党支部 1/1项 100% 40.00元 40.00元 0.00元",
                    "未填党支部 1/1项 100% 20.00元 20.00元 0.00元"]
    assert text_of(html, "total") == "合计 3/5项 60% 152.50元 110.00元 42.50元"
    assert '<option value="2026-03" selected>2026年3月（本月）</option>' in html
    assert '<option value="2026-02">2026年2月</option>' in html
    assert 'href="/console/fees/branch?period=2026-03&amp;name=%E7%AC%AC' in html


def test_fee_period_picker_earlier_month_empty_month_and_bad_input(client, fees):
    with time_machine.travel(MARCH_10, tick=False):
        logged_in(client)
        february = page(client, "/console/fees/?period=2026-02")
        assert rows_of(february, "branches") == ["第一党支部 0/1项 0% 30.00元 0.00元 30.00元"]
        assert 'id="this-month"' in february
        assert rows_of(page(client, "/console/fees/?period=2026年2月"), "branches") == \
            rows_of(february, "branches")                       # forgiving, like the chat
        empty = page(client, "/console/fees/?period=2025-01")
        assert "2025年1月还没有缴费台账" in empty and 'id="branches"' not in empty
        assert '<option value="2025-01" selected>' in empty      # the picker shows where
        bad = page(client, "/console/fees/?period=<b>明年</b>")
    assert "“&lt;b&gt;明年&lt;/b&gt;”不是有效的月份" in bad and "<b>明年" not in bad
    assert "<h1>党费收缴 · 2026年3月</h1>" in bad                  # the current month instead


def test_fee_current_month_is_the_local_month(client, fees):
    last_evening = datetime(2026, 3, 31, 15, 30, tzinfo=timezone.utc)  # 23:30 in Beijing
    with time_machine.travel(last_evening, tick=False):
        logged_in(client)
        assert "<h1>党费收缴 · 2026年3月</h1>" in page(client, "/console/fees/")
    with time_machine.travel(last_evening + timedelta(hours=1), tick=False):  # 1 April 00:30
        html = page(client, "/console/fees/")
    assert "<h1>党费收缴 · 2026年4月</h1>" in html and "2026年4月还没有缴费台账" in html


def test_fee_branch_unpaid_list_with_phones_and_items_owed(client, fees):
    with time_machine.travel(MARCH_10, tick=False):
        logged_in(client)
        html = page(client, "/console/fees/branch?period=2026-03&name=第一党支部")
        second = page(client, "/console/fees/branch?period=2026-03&name=第二党支部")
        nobody = page(client, "/console/fees/branch?period=2026-03&name=")
    assert "<h1>第一党支部 · 未缴名单</h1>" in html
    assert text_of(html, "stat") == \
        "2026年3月：已缴1/3项，收缴率33%，已收50.00元，未收42.50元。"
    assert rows_of(html, "owing") == [
        "赵德顺 13800001002 光明社区 2026年2月 党费 30.00元 （往月） 2026年3月 党费 30.00元 "
        "2026年3月 活动费 12.50元 72.50元"]
    assert 'href="tel:13800001002"' in html and "王建国" not in html  # paid: not listed
    assert "这个支部没有未缴的费用" in second
    assert "<h1>未填党支部 · 未缴名单</h1>" in nobody and "这个支部没有未缴的费用" in nobody


def test_fee_pages_escape_branch_names_and_log_no_personal_data(app, client, people,
                                                                 tmp_path, caplog):
    with db(app) as s:
        s.add(Cadre(name="周<i>九</i>", phone="13800001009", branch="<script>x()</script>支部"))
    ledger(app, tmp_path, [["13800001009", "党费", "2026-03", "10", "否", ""]])
    caplog.set_level(logging.DEBUG)
    with time_machine.travel(MARCH_10, tick=False):
        logged_in(client)
        html = page(client, "/console/fees/")
        detail = page(client, "/console/fees/branch?period=2026-03&name="
                      + quote("<script>x()</script>支部"))
    for text in (html, detail):
        assert "<script>" not in text and "&lt;script&gt;x()&lt;/script&gt;支部" in text
    assert "周&lt;i&gt;九&lt;/i&gt;" in detail
    assert "13800001009" not in caplog.text and "周<i>" not in caplog.text


def test_fee_helpers():
    assert chosen_period(None, "2026-03") == ("2026-03", False)
    assert chosen_period("  ", "2026-03") == ("2026-03", False)
    assert chosen_period("２０２６-２", "2026-03") == ("2026-02", False)
    assert chosen_period("2026-13", "2026-03") == ("2026-03", True)
    assert branch_key("  第一党支部 ") == "第一党支部" and branch_key(None) == ""


# ---- courses ---------------------------------------------------------------------------------
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=TZ)


def create_course(app, name, sessions, capacity=1, deadline="2026-03-04",
                  venue="老干部活动中心三楼") -> int:
    """`course create` and the new course's number."""
    args = ["course", "create", name, "--venue", venue, "--capacity", str(capacity),
            "--deadline", deadline]
    for when in sessions:
        args += ["--session", when]
    return int(re.search(r"course (\d+) created", cli(app, *args)).group(1))


@pytest.fixture
def courses(app, wx, people):
    """书法班 (1 seat: 王建国 by his daughter, then 赵 and 李 waiting) and a finished course."""
    with time_machine.travel(NOW, tick=True):
        n = create_course(app, "书法班<初级>", ("2026-03-05 09:00", "2026-03-12 09:00"))
        past = create_course(app, "太极拳", ("2026-02-10 09:00",), capacity=20,
                             deadline="2026-02-08")
        assert "报名成功" in wx.text(people["family"], f"报名 {n}")
        assert "候补第1位" in wx.text(people["zhao"], f"报名 {n}")
        assert "候补第2位" in wx.text(people["li"], f"报名 {n}")
    return n, past


def test_course_list_shows_open_and_past_courses_with_seats(client, courses):
    n, past = courses
    with time_machine.travel(NOW, tick=True):
        logged_in(client)
        html = page(client, "/console/courses/")
    assert rows_of(html, "ahead") == [
        f"{n}号 书法班&lt;初级&gt; 2026年3月5日 09:00 （还有2/2次） 老干部活动中心三楼 "
        "1 1 （已满） 2 报名中 ，截止3月4日"]
    assert rows_of(html, "past") == [
        f"{past}号 太极拳 1次，已结束 老干部活动中心三楼 20 0 0 已结束"]
    assert f'href="/console/courses/{n}"' in html and "<初级>" not in html


def test_course_roster_page_lists_enrolled_then_waiting_and_links_the_export(client, courses):
    n, past = courses
    with time_machine.travel(NOW, tick=True):
        logged_in(client)
        html = page(client, f"/console/courses/{n}")
        finished = page(client, f"/console/courses/{past}")
    assert f"<h1>{n}号 书法班&lt;初级&gt;</h1>" in html
    assert rows_of(html, "roster") == [
        "1 王建国 13800001001 第一党支部 已报名 2026年3月2日 09:00 家属代报",
        "2 赵德顺 13800001002 第一党支部 候补第1位 2026年3月2日 09:00 本人",
        "3 李秀英 13800001003 第二党支部 候补第2位 2026年3月2日 09:00 本人"]
    assert f'href="/console/courses/{n}/roster.xlsx" id="export" download>下载 Excel</a>' in html
    assert "1人，已报名1人，候补2人" in text_of(html, "facts")
    assert "还没有人报名" in finished and "课程已结束" in finished
    assert "下载 Excel" in finished


def test_roster_export_is_the_cli_workbook_with_an_xlsx_type_and_file_name(app, client,
                                                                          courses, tmp_path):
    n, _ = courses
    with time_machine.travel(NOW, tick=True):
        logged_in(client)
        response = client.get(f"/console/courses/{n}/roster.xlsx")
        path = tmp_path / "cli.xlsx"
        cli(app, "course", "roster", str(n), "--xlsx", str(path))
    assert response.status_code == 200
    assert response.mimetype == XLSX
    assert response.headers["Content-Disposition"] == disposition(n, "书法班<初级>")
    assert response.headers["Content-Disposition"].startswith(
        f'attachment; filename="course-{n}-roster.xlsx"; filename*=UTF-8\'\'')
    assert response.headers["Cache-Control"] == "no-store"
    web = load_workbook(io.BytesIO(response.data))
    mine = load_workbook(path)
    assert web.active.title == mine.active.title == "书法班<初级>"
    web_rows = list(web.active.iter_rows(values_only=True))
    assert web_rows == list(mine.active.iter_rows(values_only=True))
    assert web_rows[0] == ("姓名", "手机号", "党支部", "状态", "报名时间", "报名方式")
    assert web_rows[1] == ("王建国", "13800001001", "第一党支部", "已报名", "2026-03-02 09:00",
                           "家属代报")
    assert [r[3] for r in web_rows[2:]] == ["候补第1位", "候补第2位"]


def test_course_helpers():
    assert download_name(3, '书法/班:"a"') == "3-书法_班_a-名单.xlsx"
    assert download_name(4, "../..") == "4-course-名单.xlsx"
    header = disposition(3, "书法班")
    assert header == ("attachment; filename=\"course-3-roster.xlsx\"; filename*=UTF-8''"
                      + quote("3-书法班-名单.xlsx", safe=""))

    def view(number, upcoming):
        return CourseView(number, "c", "v", 1, 0, 0, NOW.date(), upcoming, 2, False)

    later, sooner = NOW + timedelta(days=9), NOW + timedelta(days=2)
    ahead, past = split_courses([view(1, []), view(2, [later]), view(3, [sooner]), view(4, [])])
    assert [v.number for v in ahead] == [3, 2] and [v.number for v in past] == [4, 1]


def test_empty_course_list(client, people):
    logged_in(client)
    assert "还没有课程" in page(client, "/console/courses/")


# ---- broadcasts --------------------------------------------------------------------------------
NIGHT = datetime(2026, 3, 2, 22, 30, tzinfo=TZ)  # inside quiet hours: deliveries stay pending


def groups(app, people) -> None:
    """合唱团: 王建国 (admin), 赵德顺, 李秀英 — 4 recipients with 王's daughter."""
    with db(app) as s:
        group = BroadcastGroup(name="合唱团<一队>")
        s.add(group)
        s.flush()
        s.add_all([GroupMember(group_id=group.id, cadre_id=people[k], is_admin=k == "wang_id")
                   for k in ("wang_id", "zhao_id", "li_id")])


def broadcast(wx, openid: str, content: str) -> int:
    """Send a broadcast through the 群发 dialog; its number."""
    assert "请发送要群发" in wx.text(openid, "群发")
    assert "请核对" in wx.text(openid, content)
    return int(re.search(r"第(\d+)号群发", wx.text(openid, "1")).group(1))


def test_broadcast_reports_list_and_detail_with_counts(night_app):
    app, p = night_app, make_people(night_app)
    wx, client = WeChat(app), app.test_client()
    groups(app, p)
    long_text = "明天上午九点在老干部活动中心排练，请准时参加。\n带上<歌谱>和水杯，天冷注意保暖。"
    with time_machine.travel(NIGHT, tick=False):
        first = broadcast(wx, p["wang"], "周五下午看电影")
        second = broadcast(wx, p["wang"], long_text)
        assert "已撤回" in wx.text(p["wang"], f"撤回群发 {first}")
        with db(app) as s:  # two of the second's four deliveries settled: one sent, one failed
            ids = sorted(s.scalars(Delivery.__table__.select().with_only_columns(Delivery.id)
                                   .where(Delivery.campaign == f"broadcast:{second}")))
            s.execute(update(Delivery).where(Delivery.id == ids[0]).values(status="sandbox"))
            s.execute(update(Delivery).where(Delivery.id == ids[1]).values(status="undeliverable"))
        logged_in(client)
        html = page(client, "/console/broadcasts/")
        detail = page(client, f"/console/broadcasts/{second}")
        withdrawn = page(client, f"/console/broadcasts/{first}")
    rows = rows_of(html, "broadcasts")
    assert rows == [
        f"{second}号 合唱团&lt;一队&gt; 王建国 3月2日 22:30 （3月3日 08:00发出） "
        "明天上午九点在老干部活动中心排练，请准时参加。 带上&lt;歌谱&gt;… 4 1 2 1 0",
        f"{first}号 合唱团&lt;一队&gt; 王建国 3月2日 22:30 （3月3日 08:00发出） 周五下午看电影 "
        "4 0 0 0 4"]
    assert "<歌谱>" not in html and "<歌谱>" not in detail
    assert ('<div class="card" id="content" style="white-space:pre-wrap">'
            '明天上午九点在老干部活动中心排练，请准时参加。\n'
            '带上&lt;歌谱&gt;和水杯，天冷注意保暖。</div>') in detail
    counts = re.findall(r'<td class="(\w+)">(\d+)', detail)
    assert counts == [("delivered", "1"), ("pending", "2"), ("failed", "1"), ("cancelled", "0"),
                      ("total", "4")]
    facts = text_of(detail, "facts")
    assert "发送人 王建国" in facts and "发送人数 4人" in facts
    assert text_of(withdrawn, "revoked") == "王建国于3月2日 22:30撤回，停发4条"
    assert re.findall(r'<td class="(\w+)">(\d+)', withdrawn)[3] == ("cancelled", "4")


def test_broadcast_list_pages_and_empty_states(app, client, people, monkeypatch):
    import handlers.broadcasts.web as web

    logged_in(client)
    assert "还没有群发过通知" in page(client, "/console/broadcasts/")
    groups(app, people)
    with db(app) as s:
        gid = s.scalar(BroadcastGroup.__table__.select().with_only_columns(BroadcastGroup.id))
        s.add_all([Broadcast(group_id=gid, sender_openid=people["wang"], content=f"通知{i}",
                             recipients=0, sender_cadre_id=None) for i in range(5)])
    monkeypatch.setattr(web, "PAGE_SIZE", 2)
    html = page(client, "/console/broadcasts/")
    assert [r.split()[0] for r in rows_of(html, "broadcasts")] == ["5号", "4号"]
    older = re.search(r'href="(/console/broadcasts/\?before=\d+)" id="older"', html).group(1)
    assert older.endswith("before=4")
    html = page(client, older)
    assert [r.split()[0] for r in rows_of(html, "broadcasts")] == ["3号", "2号"]
    assert rows_of(html, "broadcasts")[0].split()[2] == "—"  # no sender cadre on record
    last = page(client, "/console/broadcasts/?before=2")
    assert [r.split()[0] for r in rows_of(last, "broadcasts")] == ["1号"]
    assert 'id="older"' not in last
    assert "没有更早的群发了" in page(client, "/console/broadcasts/?before=1")
    assert rows_of(page(client, "/console/broadcasts/?before=abc"), "broadcasts")[0] \
        .startswith("5号")


def test_first_words():
    assert first_words("  短通知 ") == "短通知"
    assert first_words("第一行\n\n第二行", limit=30) == "第一行 第二行"
    assert first_words("一二三四五六", limit=4) == "一二三四…"
    assert first_words("") == ""


# ---- festivals -------------------------------------------------------------------------------
def at(text: str) -> datetime:
    """A local time."""
    return datetime.fromisoformat(text).replace(tzinfo=TZ)


def test_festival_answers_of_the_next_festival_with_family_and_silent(app, client, wx, people):
    with db(app) as s:
        s.execute(update(Cadre).where(Cadre.id == people["li_id"]).values(community="和平社区"))
    cli(app, "jobs", "run", "festival_notices", "--now", "2026-09-18T09:00")  # 中秋 9-25
    with time_machine.travel(at("2026-09-20T10:00"), tick=False):
        assert "已记下" in wx.text(people["family"], "走访 周二上午<早点>")
        assert "不在家" in wx.text(people["zhao"], "不在家")
        logged_in(client)
        html = page(client, "/console/festivals/")
        chosen = page(client, "/console/festivals/?f=mid_autumn")
    assert "<h1>节日走访 · 中秋节（2026年9月25日）</h1>" in html
    assert text_of(html, "summary") == ("走访时间：9月19日至9月24日。已通知3位，已答复2位"
                                        "（约了时间1位，不在家1位），未答复1位。")
    assert rows_of(html, "times") == [
        "王建国 幸福社区 13800001001 方便时间：周二上午&lt;早点&gt; 家属答复"]
    assert rows_of(html, "away") == ["赵德顺 光明社区 13800001002 不在家 本人"]
    assert rows_of(html, "silent") == ["李秀英 和平社区 13800001003 未答复 —"]
    assert "孙老" not in html  # not bound: never told, not on the list
    assert '<option value="mid_autumn" selected>中秋节（2026年9月25日）</option>' in html
    assert '<option value="double_ninth">重阳节（2026年10月18日）</option>' in html
    assert "除夕" not in html  # greeting only: nothing to arrange
    assert chosen == html


def test_festival_picker_before_notices_and_after_the_festival(app, client, people):
    cli(app, "jobs", "run", "festival_notices", "--now", "2026-09-18T09:00")
    with time_machine.travel(at("2026-09-20T10:00"), tick=False):
        logged_in(client)
        early = page(client, "/console/festivals/?f=double_ninth")
    assert "<h1>节日走访 · 重阳节（2026年10月18日）</h1>" in early
    assert "走访通知将于10月8日发出" in text_of(early, "not-noticed")
    assert '<option value="double_ninth" selected>' in early
    with time_machine.travel(at("2026-09-28T10:00"), tick=False):  # 中秋 is over
        logged_in(client)
        default = page(client, "/console/festivals/")
        past = page(client, "/console/festivals/?f=mid_autumn")
    assert "重阳节（2026年10月18日）" in default.split("</h1>")[0]  # the next one
    assert "中秋节（2026年9月25日）" in past.split("</h1>")[0]       # still its answers
    assert any(r.startswith("王建国 幸福社区") for r in rows_of(past, "silent"))


def test_festival_page_when_nobody_was_told(client, people):
    with time_machine.travel(at("2026-09-20T10:00"), tick=False):
        logged_in(client)
        html = page(client, "/console/festivals/?f=mid_autumn")
    assert "这次没有老同志收到走访通知" in html  # the notice day passed without a notice run
