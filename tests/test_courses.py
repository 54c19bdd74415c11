"""Class sign-ups through the real webhook and the CLI: create/import/list/roster, the course
list dialog, 报名 / 取消报名 / 我的课程, the wait-list and promotion, deadlines, capacity under
concurrency (service and webhook), and the evening-before reminders by time travel."""
from __future__ import annotations

import re
import threading
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
import time_machine
from openpyxl import Workbook, load_workbook
from sqlalchemy import select, update

from bot.jobs import run_job
from handlers.courses import service
from handlers.courses.importer import (
    RowError,
    parse_capacity,
    parse_deadline,
    parse_sessions,
)
from handlers.courses.jobs import jobs as course_jobs
from models import Binding, Cadre, Delivery
from models.courses import Course, CourseEvent, CourseSession, Enrollment
from models.people import ActionLog
from tests.wx import WeChat
from tests.conftest import db, oid, sent

TZ = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=TZ)  # Monday morning


@pytest.fixture(autouse=True)
def clock():
    """Every test runs on Monday 2 March 2026 from 09:00 Beijing time (the clock ticks on, so
    background delivery threads that wait on it still finish)."""
    with time_machine.travel(NOW, tick=True):
        yield


@dataclass
class People:
    """Openids and cadre ids of everyone in the story."""

    cadre: str       # 王建国 himself
    family: str      # his daughter, acting for him
    other: str       # 李秀英
    third: str       # 赵德顺
    stranger: str    # follows the account, bound to nobody
    ids: dict


@pytest.fixture
def people(app) -> People:
    """Three bound cadres (王建国 also with a family member) and a stranger."""
    p = {tag: oid(tag) for tag in ("cadre", "family", "other", "third", "stranger")}
    with db(app) as s:
        rows = {"wang": Cadre(name="王建国", phone="13800001001", branch="第一党支部"),
                "li": Cadre(name="李秀英", phone="13800001002", branch="第二党支部"),
                "zhao": Cadre(name="赵德顺", phone="13800001003")}
        s.add_all(rows.values())
        s.flush()
        s.add_all([Binding(openid=p["cadre"], cadre_id=rows["wang"].id, relation="self"),
                   Binding(openid=p["family"], cadre_id=rows["wang"].id, relation="family"),
                   Binding(openid=p["other"], cadre_id=rows["li"].id, relation="self"),
                   Binding(openid=p["third"], cadre_id=rows["zhao"].id, relation="self")])
        ids = {k: c.id for k, c in rows.items()}
    return People(**p, ids=ids)


def cli(app, *args):
    """Invoke a `flask --app bot …` command; returns the result."""
    return app.test_cli_runner().invoke(args=list(args))


def create(app, name="书法班", sessions=("2026-03-05 09:00", "2026-03-12 09:00"),
           venue="老干部活动中心三楼", capacity=2, deadline="2026-03-04") -> int:
    """`course create` and the new course's number."""
    args = ["course", "create", name, "--venue", venue, "--capacity", str(capacity),
            "--deadline", deadline]
    for s in sessions:
        args += ["--session", s]
    result = cli(app, *args)
    assert result.exit_code == 0, result.output
    return int(re.search(r"course (\d+) created", result.output).group(1))


def states(app, number: int) -> dict[int, tuple[str, int]]:
    """{cadre id: (state, queue_no)} of a course."""
    with db(app) as s:
        return {e.cadre_id: (e.state, e.queue_no) for e in
                s.scalars(select(Enrollment).where(Enrollment.course_id == number))}


def events(app, number: int) -> list[tuple]:
    """(kind, cadre id, actor role, on behalf) of a course's events, oldest first."""
    with db(app) as s:
        return [(e.kind, e.cadre_id, e.actor_role, e.on_behalf) for e in
                s.scalars(select(CourseEvent).where(CourseEvent.course_id == number)
                          .order_by(CourseEvent.id))]


def extra_cadres(app, count: int) -> list[tuple[str, int]]:
    """`count` more bound cadres: [(openid, cadre id)]."""
    out = []
    with db(app) as s:
        for i in range(count):
            cadre = Cadre(name=f"学员{i}", phone=f"139{uuid.uuid4().int % 10**8:08d}")
            s.add(cadre)
            s.flush()
            openid = oid(f"m{i}")
            s.add(Binding(openid=openid, cadre_id=cadre.id, relation="self"))
            out.append((openid, cadre.id))
    return out


# ---- CLI: create, list -------------------------------------------------------------------
def test_create_stores_sessions_in_local_time_and_list_shows_it(app):
    n = create(app, sessions=("2026-03-12 09:00", "２０２６-０３-０５ ０９：００"))
    with db(app) as s:
        course = s.get(Course, n)
        assert (course.name, course.venue, course.capacity, course.deadline) == \
            ("书法班", "老干部活动中心三楼", 2, date(2026, 3, 4))
        assert [x.starts_at.astimezone(TZ) for x in course.sessions] == \
            [datetime(2026, 3, 5, 9, 0, tzinfo=TZ), datetime(2026, 3, 12, 9, 0, tzinfo=TZ)]
    out = cli(app, "course", "list").output
    assert f"{n}\t书法班\tnext 2026-03-05 09:00 (2/2 left)" in out and "0/2 enrolled" in out


@pytest.mark.parametrize("option, value, reason", [
    ("--session", "2026-03-05", "上课时间应为"),
    ("--session", "2026-02-30 09:00", "上课时间不存在"),
    ("--capacity", "0", "名额应为1到10000的整数"),
    ("--capacity", "很多", "名额应为1到10000的整数"),
    ("--deadline", "3月4日", "报名截止应为"),
    ("--deadline", "2026-04-01", "晚于最后一次上课"),
])
def test_create_rejects_bad_values_with_the_reason(app, option, value, reason):
    args = {"--session": "2026-03-05 09:00", "--venue": "活动室", "--capacity": "5",
            "--deadline": "2026-03-04", option: value}
    result = cli(app, "course", "create", "书法班", *[x for kv in args.items() for x in kv])
    assert result.exit_code != 0 and reason in result.output
    with db(app) as s:
        assert s.scalar(select(Course.id)) is None


def test_create_refuses_a_name_that_exists(app):
    create(app)
    result = cli(app, "course", "create", "书法班", "--session", "2026-03-20 09:00",
                 "--venue", "x", "--capacity", "3", "--deadline", "2026-03-19")
    assert result.exit_code != 0 and "already exists" in result.output


# ---- CLI: import ---------------------------------------------------------------------------
HEADER = ["课程", "上课时间", "地点", "名额", "报名截止"]
GOOD_ROWS = [
    ["书法班", "2026-03-05 09:00；2026-03-12 09:00", "老干部活动中心三楼", "2", "2026-03-04"],
    ["智能手机课", "2026-03-10 14:30;2026-03-17 14:30", "社区学校", "30", "2026-03-09"],
]


def write_csv(path, rows, encoding="utf-8-sig"):
    import csv

    with open(path, "w", encoding=encoding, newline="") as fh:
        csv.writer(fh).writerows(rows)
    return path


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-8", "gbk"])
def test_import_csv_in_every_encoding_with_full_width_separators(app, tmp_path, encoding):
    path = write_csv(tmp_path / "courses.csv", [HEADER] + GOOD_ROWS, encoding)
    result = cli(app, "course", "import", str(path))
    assert result.exit_code == 0, result.output
    assert "added 2, updated 0, rejected 0" in result.output
    with db(app) as s:
        course = s.scalar(select(Course).where(Course.name == "书法班"))
        assert len(course.sessions) == 2 and course.capacity == 2
        phone = s.scalar(select(Course).where(Course.name == "智能手机课"))
        assert phone.sessions[0].starts_at.astimezone(TZ).hour == 14


def test_import_xlsx_with_excel_types_and_bad_rows(app, tmp_path):
    book = Workbook()
    sheet = book.active
    sheet.append(HEADER)
    sheet.append(["太极拳", datetime(2026, 3, 6, 8, 0), "公园东门", 20.0, datetime(2026, 3, 5)])
    sheet.append(["", "2026-03-06 08:00", "公园", 5, "2026-03-05"])            # row 3
    sheet.append(["合唱团", "下周一上午", "礼堂", 5, "2026-03-05"])              # row 4
    sheet.append(["国画班", "2026-03-09 09:00", "画室", -3, "2026-03-05"])       # row 5
    sheet.append([None, None, None, None, None])                                 # blank
    sheet.append(["太极拳", "2026-03-07 08:00", "公园", 5, "2026-03-05"])       # row 7
    sheet.append(["摄影班", "2026-03-09 09:00", "", 5, "2026-03-05"])           # row 8
    path = tmp_path / "courses.xlsx"
    book.save(path)
    result = cli(app, "course", "import", str(path))
    assert result.exit_code == 0, result.output
    assert "rejected row 3: 缺少课程名称" in result.output
    assert "rejected row 4: 上课时间应为“YYYY-MM-DD HH:MM”，多个用分号隔开：下周一上午" in \
        result.output
    assert "rejected row 5: 名额应为1到10000的整数：-3" in result.output
    assert "rejected row 7: 课程名称与第2行重复" in result.output
    assert "rejected row 8: 缺少地点" in result.output
    assert "added 1, updated 0, rejected 5" in result.output
    with db(app) as s:
        course = s.scalar(select(Course).where(Course.name == "太极拳"))
        assert (course.capacity, course.deadline) == (20, date(2026, 3, 5))
        assert course.sessions[0].starts_at.astimezone(TZ) == datetime(2026, 3, 6, 8, 0,
                                                                         tzinfo=TZ)


def test_import_file_problems_are_errors(app, tmp_path):
    missing = cli(app, "course", "import", str(tmp_path / "nope.csv"))
    assert missing.exit_code != 0 and "no such file" in missing.output
    wrong = write_csv(tmp_path / "wrong.csv", [["课程", "地点"], ["书法班", "活动室"]])
    result = cli(app, "course", "import", str(wrong))
    assert result.exit_code != 0 and "missing column(s) 上课时间, 名额, 报名截止" in result.output
    other = tmp_path / "courses.txt"
    other.write_text("x", encoding="utf-8")
    assert "only .csv and .xlsx" in cli(app, "course", "import", str(other)).output


def test_reimport_updates_by_name_and_new_seats_promote_the_wait_list(app, wx, people,
                                                                      tmp_path):
    path = write_csv(tmp_path / "c.csv", [HEADER] + GOOD_ROWS)
    cli(app, "course", "import", str(path))
    with db(app) as s:
        n = s.scalar(select(Course.id).where(Course.name == "书法班"))
    for openid in (people.cadre, people.other, people.third):
        wx.text(openid, f"报名 {n}")
    assert states(app, n)[people.ids["zhao"]][0] == "waitlisted"
    rows = [HEADER, ["书法班", "2026-03-12 09:00；2026-03-19 09:00", "老年大学201教室", "3",
                     "2026-03-11"]]
    result = cli(app, "course", "import", str(write_csv(tmp_path / "c2.csv", rows)))
    assert "added 0, updated 1, rejected 0, 1 moved from the wait-list" in result.output
    with db(app) as s:
        course = s.get(Course, n)
        assert (course.venue, course.capacity, course.deadline) == \
            ("老年大学201教室", 3, date(2026, 3, 11))
        assert [x.starts_at.astimezone(TZ).day for x in course.sessions] == [12, 19]
        assert s.scalar(select(CourseSession.id).where(CourseSession.course_id == n)
                        .order_by(CourseSession.id)) > 0
    assert states(app, n)[people.ids["zhao"]][0] == "enrolled"
    assert "已从候补转为正式报名" in sent(app, people.third)[-1]
    assert "老年大学201教室" in wx.pushes(people.third)[-1]


# ---- CLI: roster ---------------------------------------------------------------------------
def test_roster_xlsx_lists_enrolled_then_waiting_with_full_phones(app, wx, people, tmp_path):
    n = create(app, capacity=1)
    wx.text(people.family, f"报名 {n}")      # 王建国, by his daughter
    wx.text(people.third, f"报名 {n}")       # 赵德顺: waiting 1st
    wx.text(people.other, f"报名 {n}")       # 李秀英: waiting 2nd
    path = tmp_path / "out" / "roster.xlsx"
    result = cli(app, "course", "roster", str(n), "--xlsx", str(path))
    assert result.exit_code == 0, result.output
    assert "1 enrolled, 2 waiting" in result.output
    sheet = load_workbook(path).active
    rows = [list(r) for r in sheet.iter_rows(values_only=True)]
    assert rows[0] == ["姓名", "手机号", "党支部", "状态", "报名时间", "报名方式"]
    assert rows[1] == ["王建国", "13800001001", "第一党支部", "已报名", "2026-03-02 09:00",
                       "家属代报"]
    assert rows[2][:4] == ["赵德顺", "13800001003", None, "候补第1位"]
    assert rows[3][:4] == ["李秀英", "13800001002", "第二党支部", "候补第2位"]
    assert len(rows) == 4
    text = cli(app, "course", "roster", str(n)).output  # without --xlsx: printed
    assert "王建国\t13800001001" in text
    assert cli(app, "course", "roster", "999").exit_code != 0


def test_roster_export_writes_formula_looking_names_as_text(app, wx, people, tmp_path):
    """A name like `=HYPERLINK(…)` (or +, -, @) must not run when staff open the sheet."""
    n = create(app, capacity=5)
    with db(app) as s:
        s.execute(update(Cadre).where(Cadre.id == people.ids["wang"])
                  .values(name='=HYPERLINK("http://evil.example","点我")', branch="+1+2"))
    wx.text(people.cadre, f"报名 {n}")
    path = tmp_path / "roster.xlsx"
    assert cli(app, "course", "roster", str(n), "--xlsx", str(path)).exit_code == 0
    sheet = load_workbook(path).active
    name, _, branch = (sheet.cell(row=2, column=c) for c in (1, 2, 3))
    assert name.data_type == "s" and name.value.startswith("=HYPERLINK")
    assert branch.data_type == "s" and branch.value == "+1+2"


# ---- chat: list and sign up ----------------------------------------------------------------
def test_course_list_shows_number_schedule_venue_seats_and_a_number_signs_up(app, wx,
                                                                             people):
    n = create(app)
    create(app, "智能手机课", sessions=("2026-03-01 14:30",), deadline="2026-02-28")  # over
    closed = create(app, "国画班", sessions=("2026-03-20 09:00",), deadline="2026-03-01")
    listing = wx.text(people.cadre, "课程")
    assert f"{n}. 书法班" in listing
    assert "3月5日（周四）09:00、3月12日（周四）09:00，共2次" in listing
    assert "地点：老干部活动中心三楼" in listing and "剩余名额2个（共2个）" in listing
    assert "3月4日截止报名" in listing and "回复课程编号报名" in listing
    assert "智能手机课" not in listing and "国画班" not in listing
    reply = wx.text(people.cadre, str(n))
    assert reply.startswith("报名成功！") and "第一次上课：3月5日（周四）09:00" in reply
    assert "地点：老干部活动中心三楼" in reply and f"取消报名 {n}" in reply
    assert states(app, n) == {people.ids["wang"]: ("enrolled", 1)}
    assert "剩余名额1个" in wx.click(people.other, "MENU_COURSES")
    assert "报名成功" in wx.text(people.other, "一")  # Chinese numeral in the dialog…
    assert n < 10 and "不用重复报名" in wx.text(people.cadre, f"报名　{chr(0xFF10 + n)}。")
    assert "报名已在3月1日截止" in wx.text(people.third, f"报名 {closed}")


def test_sign_up_by_name_and_voice(app, wx, people):
    n = create(app)
    wx.text(people.cadre, "课程")
    assert "报名成功" in wx.voice(people.cadre, "书法。")
    assert states(app, n)[people.ids["wang"]][0] == "enrolled"
    assert "报名成功" in wx.text(people.other, "报名 书法班")


def test_wrong_answers_in_the_list_dialog_are_answered_and_re_asked(app, wx, people):
    n = create(app)
    closed = create(app, "国画班", sessions=("2026-03-20 09:00",), deadline="2026-03-01")
    wx.text(people.cadre, "课程")
    again = wx.text(people.cadre, "99")
    assert "没有找到99号课程" in again and f"{n}. 书法班" in again and "回复课程编号" in again
    assert "没听明白" in wx.text(people.cadre, "随便看看")
    late = wx.text(people.cadre, str(closed))
    assert "报名已在3月1日截止" in late and f"{n}. 书法班" in late
    assert "报名成功" in wx.text(people.cadre, str(n))  # still in the dialog after all that
    wx.text(people.other, "课程")
    assert "已取消" in wx.text(people.other, "0") and states(app, n).get(people.ids["li"]) is None


def test_commands_outside_and_inside_the_dialog_work(app, wx, people):
    n = create(app)
    wx.text(people.cadre, "课程")
    mine = wx.text(people.cadre, "我的课程")  # a command leaves the list
    assert "还没有报名课程" in mine
    wx.text(people.cadre, "课程")
    assert "报名成功" in wx.text(people.cadre, f"报名{n}")
    wx.text(people.cadre, "课程")
    assert "哪方面的问题" in wx.text(people.cadre, "反映问题")  # any feature's command


def test_unknown_and_deadline_passed_numbers_get_the_list(app, wx, people):
    n = create(app)
    closed = create(app, "国画班", sessions=("2026-03-20 09:00",), deadline="2026-03-01")
    unknown = wx.text(people.cadre, "报名 42")
    assert "没有找到42号课程" in unknown and "现在可以报名的课程" in unknown
    assert f"{n}. 书法班（3月5日（周四）09:00起，剩余名额2个（共2个））" in unknown
    late = wx.text(people.cadre, f"报名 {closed}")
    assert "“国画班”" in late and "截止" in late and f"报名 {n}" in late
    assert "没有找到叫“篮球”的课程" in wx.text(people.cadre, "报名 篮球")
    assert states(app, closed) == {}


def test_no_open_courses_says_so_without_a_dialog(app, wx, people):
    assert "现在没有正在报名的课程" in wx.text(people.cadre, "课程")
    assert "没有找到" not in wx.text(people.cadre, "99")  # not taken as a course number


def test_unbound_users_are_asked_to_bind(app, wx, people):
    create(app)
    for command in ("课程", "报名 1", "取消报名 1", "我的课程"):
        assert "请先绑定" in wx.text(people.stranger, command)
    assert "请先绑定" in wx.click(people.stranger, "MENU_COURSES")


# ---- full course, wait-list, cancel and promotion ----------------------------------------
def test_full_course_wait_lists_in_order_and_a_cancel_promotes_the_first(app, wx, people):
    n = create(app, capacity=1)
    assert "报名成功" in wx.text(people.other, f"报名 {n}")
    first = wx.text(people.cadre, f"报名 {n}")
    assert "名额已满" in first and "候补第1位" in first
    assert "候补第2位" in wx.text(people.third, f"报名 {n}")
    assert "现在是候补第1位，不用重复报名" in wx.text(people.family, f"报名 {n}")
    mine = wx.text(people.family, "我的课程")
    assert "王建国报名的课程" in mine and f"{n}. 书法班｜候补第1位" in mine
    assert "下次上课：3月5日（周四）09:00（还有2次课）" in mine
    assert "名额已满，2人候补" in wx.text(people.third, "课程")

    cancelled = wx.text(people.other, f"取消报名 {n}")
    assert "已取消“书法班”" in cancelled
    assert states(app, n)[people.ids["wang"]][0] == "enrolled"
    assert states(app, n)[people.ids["li"]][0] == "cancelled"
    for openid in (people.cadre, people.family):  # the cadre and the family both hear it
        assert "已从候补转为正式报名" in sent(app, openid)[-1]
    assert "王建国已从候补" in sent(app, people.family)[-1]
    assert "您已从候补" in sent(app, people.cadre)[-1]
    assert "王建国已从候补" in wx.pushes(people.family)[-1]
    assert "候补第1位" in wx.text(people.third, "我的课程")  # moved up from 2nd
    assert "没有报名“书法班”" in wx.text(people.other, f"取消报名 {n}")
    # Signing up again after a cancel: same row, back of the queue.
    assert "候补第2位" in wx.text(people.other, f"报名 {n}")
    assert states(app, n)[people.ids["li"]] == ("waitlisted", 4)
    assert [e[0] for e in events(app, n)] == ["enrolled", "waitlisted", "waitlisted",
                                              "cancelled", "promoted", "waitlisted"]


def test_cancelling_a_wait_list_place_promotes_nobody(app, wx, people):
    n = create(app, capacity=1)
    wx.text(people.other, f"报名 {n}")
    wx.text(people.cadre, f"报名 {n}")
    wx.text(people.third, f"报名 {n}")
    wx.text(people.cadre, f"取消报名 {n}")
    assert states(app, n)[people.ids["zhao"]][0] == "waitlisted"
    assert "候补第1位" in wx.text(people.third, "我的课程")
    assert not any("转为正式报名" in b for b in sent(app, people.third))


def test_cancel_without_a_number_lists_the_choices(app, wx, people):
    n = create(app)
    assert "现在没有报名任何课程" in wx.text(people.cadre, "取消报名")
    wx.text(people.cadre, f"报名 {n}")
    reply = wx.text(people.cadre, "取消报名")
    assert f"{n}. 书法班（已报名）" in reply and f"取消报名 {n}" in reply
    assert states(app, n)[people.ids["wang"]][0] == "enrolled"
    assert "已取消" in wx.text(people.cadre, "取消报名 书法")
    assert "没有找到叫“篮球”的课程" in wx.text(people.cadre, "取消报名 篮球")
    assert "没有找到77号课程" in wx.text(people.cadre, "取消报名 77")


def test_leave_for_one_session_keeps_the_seat_in_any_words(app, wx, people):
    n = create(app)  # sessions on Thursday 5 and 12 March, 09:00
    other = create(app, name="太极拳", sessions=("2026-03-06 15:00",))
    assert "没有已报名的课程，不用请假" in wx.text(people.cadre, "请假")
    wx.text(people.cadre, f"报名 {n}")
    reply = wx.text(people.cadre, "周四书法课我去不了，孙子发烧我得看着")
    assert "已帮您请假" in reply and "3月5日（周四）09:00" in reply and f"取消报名 {n}" in reply
    assert states(app, n)[people.ids["wang"]][0] == "enrolled"  # the seat is kept
    assert "已经请过假了" in wx.text(people.cadre, "请假")      # asked once
    with db(app) as s:
        leave = s.scalars(select(CourseEvent).where(CourseEvent.kind == service.LEAVE)).all()
        first = s.scalar(select(CourseSession.id).where(CourseSession.course_id == n)
                         .order_by(CourseSession.starts_at))
    assert [(e.cadre_id, e.data["session_id"]) for e in leave] == [(people.ids["wang"], first)]
    wx.text(people.cadre, f"报名 {other}")
    reply = wx.text(people.family, "我爸明天的课去不了了")  # two courses: which one
    assert "哪门课请假" in reply and f"{n}. 书法班" in reply and f"{other}. 太极拳" in reply
    reply = wx.text(people.family, f"请假 {other}")
    assert "已帮王建国请假" in reply and "太极拳" in reply
    assert "没有报名“书法班”" in wx.text(people.other, f"请假 {n}")


def test_family_acts_for_the_cadre_and_everything_is_recorded(app, wx, people):
    n = create(app)
    reply = wx.text(people.family, f"报名 {n}")
    assert "已为王建国报上“书法班”" in reply
    assert "家人已为您报名“书法班”" in sent(app, people.cadre)[-1]
    assert sent(app, people.family) == []  # the actor is answered, not pushed
    wx.text(people.cadre, f"取消报名 {n}")
    assert not any("取消" in b for b in sent(app, people.family))  # the cadre's own act
    wx.text(people.family, f"报名 {n}")
    assert events(app, n) == [("enrolled", people.ids["wang"], "family", True),
                              ("cancelled", people.ids["wang"], "cadre", False),
                              ("enrolled", people.ids["wang"], "family", True)]
    with db(app) as s:
        log = [(a.openid, a.action, a.on_behalf) for a in
               s.scalars(select(ActionLog).where(ActionLog.cadre_id == people.ids["wang"])
                         .order_by(ActionLog.id))]
    assert log == [(people.family, f"course.enrolled:{n}", True),
                   (people.cadre, f"course.cancelled:{n}", False),
                   (people.family, f"course.enrolled:{n}", True)]


def test_a_finished_course_can_neither_be_joined_nor_left(app, wx, people):
    n = create(app, sessions=("2026-03-02 08:00",), deadline="2026-03-02")  # began at 08:00
    assert "已经结课" in wx.text(people.cadre, f"报名 {n}")
    assert "已经结课" not in wx.text(people.cadre, "课程")


# ---- capacity under concurrency ----------------------------------------------------------
def test_simultaneous_sign_ups_fill_exactly_the_seats_service(app):
    n = create(app, capacity=3)
    members = extra_cadres(app, 8)
    yl = app.extensions["yinling"]
    barrier = threading.Barrier(len(members))
    outcomes: dict[int, str] = {}
    errors: list[BaseException] = []

    def sign(openid, cadre_id):
        try:
            barrier.wait()
            with yl.db.session() as s:
                pushes = []
                o = service.sign_up(s, n, service.Actor(openid, cadre_id, False), NOW,
                                    lambda *a, **k: pushes.append(a))
                outcomes[cadre_id] = o.state
        except Exception as exc:  # surfaced below, with the thread's error
            errors.append(exc)

    threads = [threading.Thread(target=sign, args=m) for m in members]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    rows = states(app, n)
    assert sorted(q for _, q in rows.values()) == list(range(1, 9))  # one place each
    enrolled = [c for c, (state, _) in rows.items() if state == "enrolled"]
    waiting = sorted((q, c) for c, (state, q) in rows.items() if state == "waitlisted")
    assert len(enrolled) == 3 and len(waiting) == 5
    assert max(rows[c][1] for c in enrolled) < waiting[0][0]  # seats went to the first three
    with db(app) as s:
        positions = [service.position(s, s.get(Enrollment, e.id)) for e in s.scalars(
            select(Enrollment).where(Enrollment.state == "waitlisted")
            .order_by(Enrollment.queue_no))]
        assert positions == [1, 2, 3, 4, 5]
        pushes = []
        service.cancel(s, n, service.Actor("x", enrolled[0], False), NOW,
                       lambda *a, **k: pushes.append(a))
    assert states(app, n)[waiting[0][1]][0] == "enrolled"  # the first in the queue moves up
    assert sum(st == "enrolled" for st, _ in states(app, n).values()) == 3


def test_simultaneous_sign_ups_through_the_webhook(app, people):
    n = create(app, capacity=2)
    members = extra_cadres(app, 6)
    replies: dict[str, str] = {}
    barrier = threading.Barrier(len(members))

    def sign(openid):
        wx = WeChat(app)
        barrier.wait()
        replies[openid] = wx.text(openid, f"报名 {n}")

    threads = [threading.Thread(target=sign, args=(o,)) for o, _ in members]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    won = [r for r in replies.values() if r.startswith("报名成功")]
    queued = sorted(int(re.search(r"候补第(\d+)位", r).group(1)) for r in replies.values()
                    if "名额已满" in r)
    assert len(won) == 2 and queued == [1, 2, 3, 4], replies
    assert sum(st == "enrolled" for st, _ in states(app, n).values()) == 2


def test_cadre_and_family_at_once_make_one_enrolment(app, people):
    n = create(app, capacity=5)
    barrier = threading.Barrier(2)
    replies = []

    def sign(openid):
        wx = WeChat(app)
        barrier.wait()
        replies.append(wx.text(openid, f"报名 {n}"))

    threads = [threading.Thread(target=sign, args=(o,)) for o in (people.cadre, people.family)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(r.startswith("报名成功") for r in replies) == 1, replies
    assert sum("不用重复报名" in r for r in replies) == 1, replies
    assert states(app, n) == {people.ids["wang"]: ("enrolled", 1)}


# ---- reminders -----------------------------------------------------------------------------
def run(app, when: str):
    """`jobs run class_reminders --now WHEN` through the CLI."""
    result = cli(app, "jobs", "run", "class_reminders", "--now", when)
    assert result.exit_code == 0, result.output
    return int(re.search(r"class_reminders: (\d+)", result.output).group(1))


def test_reminders_the_evening_before_reach_enrolled_cadres_and_family_once(app, wx, people):
    n = create(app, capacity=1)
    other = create(app, "太极拳", sessions=("2026-03-06 08:00",), deadline="2026-03-05")
    wx.text(people.family, f"报名 {n}")  # 王建国 enrolled (by family)
    wx.text(people.other, f"报名 {n}")   # 李秀英 waiting: no reminder
    wx.text(people.third, f"报名 {other}")
    wx.text(people.third, f"取消报名 {other}")  # cancelled: no reminder
    before = {o: len(sent(app, o)) for o in (people.cadre, people.family, people.other,
                                             people.third)}
    assert run(app, "2026-03-03T18:00") == 0  # nothing on Wednesday
    assert run(app, "2026-03-04T18:00") == 2
    cadre_msg, family_msg = sent(app, people.cadre)[-1], sent(app, people.family)[-1]
    assert "上课提醒：“书法班”明天09:00上课（3月5日），地点：老干部活动中心三楼" in cadre_msg
    assert "王建国报名的“书法班”" in family_msg and "请提醒老人" in family_msg
    assert f"取消报名 {n}" in cadre_msg  # the way out names this course
    assert len(sent(app, people.other)) == before[people.other]
    assert run(app, "2026-03-04T18:00") == 0  # running twice sends nothing twice
    assert run(app, "2026-03-04T18:30") == 0
    assert len(sent(app, people.cadre)) == before[people.cadre] + 1
    assert run(app, "2026-03-05T18:00") == 0  # 太极拳 on the 6th: only 赵德顺, who cancelled
    assert run(app, "2026-03-11T18:00") == 2  # the second 书法班 session
    assert wx.pushes(people.cadre)[-1].startswith("上课提醒")
    with db(app) as s:
        kinds = set(s.scalars(select(Delivery.kind).where(Delivery.template ==
                                                          "courses/reminder")))
    assert kinds == {"scheduled"}


def test_unsubscribed_family_gets_no_reminder(app, wx, people):
    n = create(app)
    wx.text(people.cadre, f"报名 {n}")
    wx.event(people.family, "unsubscribe")
    assert run(app, "2026-03-04T18:00") == 1
    assert sent(app, people.family) == []


def test_the_job_is_exposed_at_six_in_the_evening(app):
    assert {j.name: j.trigger for j in course_jobs} == \
        {"class_reminders": {"trigger": "cron", "hour": 18, "minute": 0}}
    assert "class_reminders" in cli(app, "jobs", "list").output


def test_reminder_job_runs_directly(app, people):
    n = create(app)
    with db(app) as s:
        service.sign_up(s, n, service.Actor(people.other, people.ids["li"], False), NOW,
                        lambda *a, **k: None)
    yl = app.extensions["yinling"]
    evening = datetime(2026, 3, 4, 18, 0, tzinfo=TZ)
    assert run_job(yl, course_jobs[0], evening) == 1
    assert run_job(yl, course_jobs[0], evening) == 0


# ---- units ---------------------------------------------------------------------------------
def test_parse_sessions_is_forgiving_about_separators_and_width():
    got = parse_sessions("２０２６-03-05 09：00；2026/3/12 9:00 ; 2026-03-19 09:00", TZ)
    assert [d.day for d in got] == [5, 12, 19] and all(d.tzinfo is TZ for d in got)
    assert parse_sessions(datetime(2026, 3, 5, 9, 0), TZ) == [datetime(2026, 3, 5, 9, 0,
                                                                         tzinfo=TZ)]


@pytest.mark.parametrize("value, code", [
    ("", "missing_sessions"), (None, "missing_sessions"), ("2026-03-05", "bad_session"),
    ("2026-13-05 09:00", "impossible_session"), ("2026-03-05 25:00", "impossible_session"),
    ("2026-03-05 09:00;2026-03-05 09:00", "duplicate_session"),
])
def test_parse_sessions_rejects(value, code):
    with pytest.raises(RowError) as info:
        parse_sessions(value, TZ)
    assert info.value.code == code


def test_parse_capacity_and_deadline():
    assert parse_capacity("３０") == 30 and parse_capacity(12.0) == 12
    assert parse_capacity("20人") == 20
    for bad in ("0", "-1", "2.5", "abc", "100001"):
        with pytest.raises(RowError):
            parse_capacity(bad)
    with pytest.raises(RowError):
        parse_capacity("")
    assert parse_deadline("2026-03-04") == date(2026, 3, 4)
    assert parse_deadline("2026年3月4日") == date(2026, 3, 4)
    assert parse_deadline(datetime(2026, 3, 4, 0, 0)) == date(2026, 3, 4)
    for bad in ("", "2026-02-30", "明天"):
        with pytest.raises(RowError):
            parse_deadline(bad)


def test_open_courses_exclude_deadline_passed_and_finished(app):
    open_n = create(app)
    create(app, "国画班", sessions=("2026-03-20 09:00",), deadline="2026-03-01")
    create(app, "旧课", sessions=("2026-03-01 09:00",), deadline="2026-03-01")
    with db(app) as s:
        assert [v.number for v in service.open_courses(s, NOW)] == [open_n]
        later = datetime(2026, 3, 5, 0, 0, tzinfo=TZ)  # the deadline day is over
        assert service.open_courses(s, later) == []
        on_deadline = datetime(2026, 3, 4, 23, 59, tzinfo=TZ)
        assert [v.number for v in service.open_courses(s, on_deadline)] == [open_n]
