"""Festival visits and greetings: the lunar calendar against published dates, the CLI, the
notice / greeting / birthday jobs by time travel, answers through the real webhook, the staff's
list, permissions and the configuration check."""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
import time_machine
import yaml
from sqlalchemy import select

from bot.jobs import run_job
from bot.settings import SettingsError
from handlers.festivals import service
from handlers.festivals.calendar import (DEFAULT_PATH, CalendarError, birthday_in, lunar_label,
                                         lunar_to_solar, parse_calendar)
from handlers.festivals.jobs import jobs as festival_jobs
from models import Binding, Cadre, Delivery, Follower, Staff
from models.festivals import AWAY, TIME, FestivalVisit
from tests.conftest import db, oid, sent

TZ = ZoneInfo("Asia/Shanghai")

# The defaults of config/festivals.yaml, every festival with a visit, 7 days ahead — except
# 除夕 (greeting only) and 重阳 (10 days), so both of those paths are exercised.
CONFIG = """
signature: 测试老干部局
days_before: 7
birthdays:
  greeting: 今天是您{age}岁生日，祝您生日快乐！
  milestone_from: 80
  milestone_every: 10
  staff_days_before: 7
festivals:
  - {key: new_year, name: 元旦, calendar: solar, month: 1, day: 1,
     notice: "新年将至，组织将于{visit_from}至{visit_to}期间上门走访慰问。", greeting: 新年快乐！}
  - {key: new_year_eve, name: 除夕, calendar: lunar, month: 12, day: last, visit: false,
     greeting: "{name}快乐，阖家团圆！"}
  - {key: spring_festival, name: 春节, aliases: [过年], calendar: lunar, month: 1, day: 1,
     notice: "新春将至，组织将于{visit_from}至{visit_to}期间上门走访慰问。", greeting: 给您拜年了！}
  - {key: lantern, name: 元宵节, calendar: lunar, month: 1, day: 15,
     notice: "元宵节将至，组织将于{visit_from}至{visit_to}期间上门走访慰问。", greeting: 元宵快乐！}
  - {key: dragon_boat, name: 端午节, calendar: lunar, month: 5, day: 5,
     notice: "端午节将至，组织将于{visit_from}至{visit_to}期间上门走访慰问。", greeting: 端午安康！}
  - {key: party_day, name: 建党节, calendar: solar, month: 7, day: 1,
     notice: "七一将至，组织将于{visit_from}至{visit_to}期间上门走访慰问。", greeting: 七一快乐！}
  - {key: army_day, name: 建军节, calendar: solar, month: 8, day: 1, audience: military,
     notice: "八一将至，组织将于{visit_from}至{visit_to}期间上门走访慰问军休干部。",
     greeting: 向您致以八一的问候！}
  - {key: mid_autumn, name: 中秋节, aliases: [中秋], calendar: lunar, month: 8, day: 15,
     notice: "中秋节（{date}）将至，组织将于{visit_from}至{visit_to}期间上门走访慰问。",
     greeting: "{name}快乐，花好月圆！"}
  - {key: national_day, name: 国庆节, calendar: solar, month: 10, day: 1,
     notice: "国庆将至，组织将于{visit_from}至{visit_to}期间上门走访慰问。", greeting: 国庆快乐！}
  - {key: double_ninth, name: 重阳节, aliases: [敬老节], calendar: lunar, month: 9, day: 9,
     days_before: 10, notice: "重阳节（敬老节）将至，组织将于{visit_from}至{visit_to}期间上门走访慰问。",
     greeting: 九九重阳，祝您健康长寿！}
"""


@pytest.fixture
def config_path(tmp_path):
    """This test's festival configuration file."""
    path = tmp_path / "festivals.yaml"
    path.write_text(CONFIG, encoding="utf-8")
    return path


@pytest.fixture
def app(make_app, config_path):
    """The app, reading this test's festival configuration."""
    return make_app(extra={"festivals": str(config_path)})


@pytest.fixture
def cal():
    """The test calendar, parsed."""
    return parse_calendar(yaml.safe_load(CONFIG))


@dataclass
class People:
    """Openids (and cadre ids) of everyone in the story."""

    cadre: str        # 王建国, born 1946-10-05 (80 in 2026), 幸福社区
    family: str       # 王建国's daughter
    veteran: str      # 李秀英, retired military, born 1936-02-29
    gone: str         # 赵大海: bound, but unfollowed the account
    stranger: str     # follows the account, bound to nobody
    staff: str        # 张干事, on duty
    boss: str         # 赵主任, supervisor, off duty
    wang_id: int = 0
    li_id: int = 0
    quiet_id: int = 0  # 孙老: in the roster, never bound (turns 90 on 2026-03-10)


@pytest.fixture
def people(app) -> People:
    """Cadres (bound, family, military, unfollowed, unbound, inactive) and two staff."""
    p = People(*(oid(t) for t in ("cadre", "family", "veteran", "gone", "stranger",
                                  "staff", "boss")))
    with db(app) as s:
        wang = Cadre(name="王建国", phone="13800001001", community="幸福社区",
                     address="幸福路1号", birth_date=date(1946, 10, 5))
        li = Cadre(name="李秀英", phone="13800001002", community="光明社区", is_military=True,
                   birth_date=date(1936, 2, 29))
        zhao = Cadre(name="赵大海", phone="13800001003", birth_date=date(1946, 10, 5))
        sun = Cadre(name="孙老", phone="13800001004", birth_date=date(1936, 3, 10),
                    community="和平社区")
        qian = Cadre(name="钱老", phone="13800001005", is_military=True, active=False,
                     birth_date=date(1946, 10, 5))
        s.add_all([wang, li, zhao, sun, qian])
        s.flush()
        qian_openid = oid("inactive")
        s.add_all([Binding(openid=p.cadre, cadre_id=wang.id, relation="self"),
                   Binding(openid=p.family, cadre_id=wang.id, relation="family"),
                   Binding(openid=p.veteran, cadre_id=li.id, relation="self"),
                   Binding(openid=p.gone, cadre_id=zhao.id, relation="self"),
                   Binding(openid=qian_openid, cadre_id=qian.id, relation="self"),
                   Follower(openid=p.gone, subscribed=False),
                   Staff(name="张干事", openid=p.staff, on_duty=True),
                   Staff(name="赵主任", openid=p.boss, role="supervisor")])
        p.wang_id, p.li_id, p.quiet_id = wang.id, li.id, sun.id
    return p


def campaigns(app, openid: str) -> list[str]:
    """The campaigns of every message queued for openid, oldest first."""
    with db(app) as s:
        return list(s.scalars(select(Delivery.campaign).where(Delivery.openid == openid)
                              .order_by(Delivery.id)))


def jobs_run(app, name: str, now: str) -> int:
    """`flask --app bot jobs run NAME --now ISO`; returns the count it printed."""
    result = app.test_cli_runner().invoke(args=["jobs", "run", name, "--now", now])
    assert result.exit_code == 0, result.output
    line = next(l for l in result.output.splitlines() if l.startswith(f"{name}: "))
    return int(line.split(": ")[1])


def at(text: str) -> datetime:
    """A local time."""
    return datetime.fromisoformat(text).replace(tzinfo=TZ)


def visits(app) -> list[tuple]:
    """Every visit row as (key, date, cadre id, answer, preferred time, on_behalf)."""
    with db(app) as s:
        return [(v.festival_key, v.festival_date, v.cadre_id, v.answer, v.preferred_time,
                 v.on_behalf) for v in s.scalars(select(FestivalVisit).order_by(
                     FestivalVisit.festival_date, FestivalVisit.cadre_id))]


# ---- the calendar --------------------------------------------------------------------------
PUBLISHED = [
    ("spring_festival", "2023-01-22"), ("spring_festival", "2024-02-10"),
    ("spring_festival", "2025-01-29"), ("spring_festival", "2026-02-17"),
    ("new_year_eve", "2024-02-09"), ("new_year_eve", "2025-01-28"),
    ("new_year_eve", "2026-02-16"), ("new_year_eve", "2020-01-24"),
    ("mid_autumn", "2023-09-29"), ("mid_autumn", "2024-09-17"), ("mid_autumn", "2025-10-06"),
    ("mid_autumn", "2026-09-25"), ("mid_autumn", "2020-10-01"),
    ("double_ninth", "2023-10-23"), ("double_ninth", "2024-10-11"),
    ("double_ninth", "2025-10-29"), ("double_ninth", "2026-10-18"),
    ("dragon_boat", "2023-06-22"), ("dragon_boat", "2025-05-31"),
    ("dragon_boat", "2020-06-25"), ("dragon_boat", "2024-06-10"),
    ("lantern", "2025-02-12"), ("lantern", "2024-02-24"),
    ("army_day", "2026-08-01"), ("new_year", "2027-01-01"),
]


@pytest.mark.parametrize("key, published", PUBLISHED)
def test_festival_dates_match_published_dates(cal, key, published):
    day = date.fromisoformat(published)
    assert cal.get(key).dates_in(day.year) == [day]
    assert key in [f.key for f in cal.on(day)]


@pytest.mark.parametrize("year, leap_month", [(2020, 4), (2023, 2), (2025, 6)])
def test_leap_month_years_use_the_ordinary_month(cal, year, leap_month):
    from lunar_python import LunarYear

    assert LunarYear.fromYear(year).getLeapMonth() == leap_month  # the library agrees
    for day, festival in cal.year(year):
        if festival.calendar == "lunar":
            _, _, leap = lunar_label(day)
            assert not leap, (festival.key, day)  # never the leap copy of the month


def test_new_years_eve_is_the_last_day_of_the_twelfth_month(cal):
    # 2025 and 2026 have no 年三十: the twelfth month has 29 days, so 除夕 is 腊月廿九.
    assert lunar_label(date(2026, 2, 16)) == ("腊", "廿九", False)
    assert lunar_label(date(2025, 1, 28)) == ("腊", "廿九", False)
    assert lunar_label(date(2024, 2, 9)) == ("腊", "三十", False)
    assert lunar_label(date(2023, 1, 21)) == ("腊", "三十", False)  # a 30-day month
    assert lunar_to_solar(2025, 12, "last") == date(2026, 2, 16)
    assert lunar_to_solar(2022, 12, "last") == date(2023, 1, 21)


def test_a_year_lists_the_lunar_festivals_that_land_in_it(cal):
    names = {f.key: d for d, f in cal.year(2026)}
    # 除夕 of lunar 2025 is in January/February 2026; lunar 2026's is in 2027.
    assert names["new_year_eve"] == date(2026, 2, 16)
    assert names["spring_festival"] == date(2026, 2, 17)
    assert list(names) == ["new_year", "new_year_eve", "spring_festival", "lantern",
                           "dragon_boat", "party_day", "army_day", "mid_autumn",
                           "national_day", "double_ninth"]
    for year in range(1901, 2100):  # every festival exactly once every year
        assert len(cal.year(year)) == 10, year


def test_birthday_in_a_common_year_moves_29_february_to_the_28th():
    assert birthday_in(2026, date(1936, 2, 29)) == date(2026, 2, 28)
    assert birthday_in(2028, date(1936, 2, 29)) == date(2028, 2, 29)
    assert birthday_in(2026, date(1946, 10, 5)) == date(2026, 10, 5)


def test_visit_period_and_matching(cal):
    mid = cal.get("mid_autumn")
    assert mid.visit_period(date(2026, 9, 25)) == (date(2026, 9, 19), date(2026, 9, 24))
    assert mid.notice_date(date(2026, 9, 25)) == date(2026, 9, 18)
    assert cal.find("中秋") is mid and cal.find("中秋节") is mid and cal.find("mid_autumn") is mid
    assert cal.find("敬老节").key == "double_ninth" and cal.find("过年").key == "spring_festival"
    assert cal.find("节") is None and cal.find("圣诞") is None
    assert cal.birthdays.is_milestone(80) and cal.birthdays.is_milestone(100)
    assert not cal.birthdays.is_milestone(85) and not cal.birthdays.is_milestone(70)


# ---- the shipped configuration and its check ----------------------------------------------
def test_shipped_config_has_the_default_festivals():
    cal = parse_calendar(yaml.safe_load(DEFAULT_PATH.read_text(encoding="utf-8")))
    names = [f.name for f in cal.festivals]
    for word in ("元旦", "除夕", "春节", "元宵", "端午", "建党", "建军", "中秋", "国庆", "重阳"):
        assert any(word in n for n in names), word
    assert [f.key for f in cal.festivals if f.military_only] == ["army_day"]
    assert cal.get("new_year_eve").day == "last"
    assert cal.find("敬老节").key == "double_ninth"
    assert all("组织将于" in f.notice for f in cal.festivals if f.visit)
    assert {d for d, _ in cal.year(2026)} >= {date(2026, 2, 17), date(2026, 9, 25)}


BROKEN = [
    ("festivals: []", "non-empty list"),
    ("festivals: [{key: x, name: X, calendar: moon, month: 1, day: 1, greeting: hi,"
     " notice: n}]", "lunar or solar"),
    ("festivals: [{key: x, name: X, calendar: lunar, month: 12, day: 30, greeting: hi,"
     " notice: n}]", "use `last`"),
    ("festivals: [{key: x, name: X, calendar: solar, month: 2, day: last, greeting: hi,"
     " notice: n}]", "only for lunar"),
    ("festivals: [{key: x, name: X, calendar: solar, month: 2, day: 29, greeting: hi,"
     " notice: n}]", "not a date every year"),
    ("festivals: [{key: x, name: X, calendar: solar, month: 13, day: 1, greeting: hi,"
     " notice: n}]", "month must be"),
    ("festivals: [{key: x, name: X, calendar: solar, month: 1, day: 1, greeting: hi}]",
     "notice must be"),
    ("festivals: [{key: x, name: X, calendar: solar, month: 1, day: 1, greeting: hi,"
     " notice: '{when}'}]", "bad placeholder"),
    ("festivals: [{key: x, name: X, calendar: solar, month: 1, day: 1, greeting: hi,"
     " notice: n, audience: veterans}]", "all or military"),
    ("festivals: [{key: x, name: X, calendar: solar, month: 1, day: 1, greeting: hi,"
     " notice: n, days_before: -1}]", "days_before"),
    ("festivals: [{key: X Y, name: X, calendar: solar, month: 1, day: 1, greeting: hi,"
     " notice: n}]", "key must be"),
    ("festivals: [{key: x, name: X, calendar: solar, month: 1, day: 1, greeting: hi,"
     " notice: n}, {key: x, name: Y, calendar: solar, month: 2, day: 1, greeting: hi,"
     " notice: n}]", "key used twice"),
]


@pytest.mark.parametrize("body, message", BROKEN)
def test_broken_config_is_refused_at_start(make_app, tmp_path, body, message):
    path = tmp_path / "festivals.yaml"
    path.write_text("birthdays: {greeting: 生日快乐}\n" + body, encoding="utf-8")
    with pytest.raises(CalendarError, match=message):
        parse_calendar(yaml.safe_load(path.read_text(encoding="utf-8")))
    with pytest.raises(SettingsError, match="festivals.yaml is not usable"):
        make_app(extra={"festivals": str(path)})


def test_missing_config_file_is_refused_at_start(make_app, tmp_path):
    with pytest.raises(SettingsError, match="nowhere.yaml is not usable"):
        make_app(extra={"festivals": str(tmp_path / "nowhere.yaml")})


# ---- the CLI --------------------------------------------------------------------------------
def test_cli_prints_the_year_one_festival_a_line(app):
    result = app.test_cli_runner().invoke(args=["festivals", "--year", "2025"])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 10
    dates = [line.split()[0] for line in lines]
    assert dates == sorted(dates) and all(d.startswith("2025-") for d in dates)
    assert lines[1].split()[:3] == ["2025-01-28", "除夕", "农历腊月廿九"]
    by_name = {line.split()[1]: line for line in lines}
    assert by_name["中秋节"].startswith("2025-10-06") and "走访通知9月29日" in by_name["中秋节"]
    assert by_name["重阳节"].startswith("2025-10-29") and "走访通知10月19日" in by_name["重阳节"]
    # The festival's own date is the only YYYY-MM-DD on its line (scripts take it from there).
    assert all(len(re.findall(r"\d{4}-\d{2}-\d{2}", line)) == 1 for line in lines)
    assert by_name["元宵节"].startswith("2025-02-12")
    assert "只发问候" in by_name["除夕"] and "军休干部" in by_name["建军节"]


def test_cli_default_year_is_this_year_in_the_local_zone(app):
    # 2025-12-31 17:00 UTC is already 2026-01-01 in Shanghai.
    with time_machine.travel(datetime(2025, 12, 31, 17, 0, tzinfo=ZoneInfo("UTC")), tick=False):
        result = app.test_cli_runner().invoke(args=["festivals"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0].startswith("2026-01-01  元旦")
    assert "2026-02-16  除夕" in result.output


@pytest.mark.parametrize("year", ["1800", "abc", "2100"])
def test_cli_rejects_a_bad_year(app, year):
    result = app.test_cli_runner().invoke(args=["festivals", "--year", year])
    assert result.exit_code != 0 and "Traceback" not in result.output


# ---- visit notices ----------------------------------------------------------------------------
def test_notice_goes_out_days_before_to_the_audience_once(app, people):
    assert jobs_run(app, "festival_notices", "2026-09-17T09:00") == 0  # 8 days before
    assert jobs_run(app, "festival_notices", "2026-09-18T09:00") == 3
    [notice] = sent(app, people.cadre)
    assert notice.startswith("尊敬的王建国同志：")
    assert "中秋节（9月25日）将至，组织将于9月19日至9月24日期间上门走访慰问" in notice
    assert "走访 9月19日上午" in notice and "不在家" in notice and "测试老干部局" in notice
    [to_family] = sent(app, people.family)
    assert "请转告您的家人王建国同志" in to_family and "家属也可以直接代为回复" in to_family
    assert len(sent(app, people.veteran)) == 1  # audience all includes military cadres
    assert sent(app, people.gone) == [] and sent(app, people.stranger) == []
    assert campaigns(app, people.cadre) == ["festival:mid_autumn:2026:notice"]
    assert jobs_run(app, "festival_notices", "2026-09-18T09:00") == 0  # twice -> once
    assert jobs_run(app, "festival_notices", "2026-09-18T16:00") == 0
    assert len(sent(app, people.cadre)) == 1
    # Only cadres somebody can answer for are waiting for an answer.
    assert {(v[0], v[2]) for v in visits(app)} == {("mid_autumn", people.wang_id),
                                                  ("mid_autumn", people.li_id)}
    with db(app) as s:
        assert set(s.scalars(select(Delivery.kind))) == {"scheduled"}


def test_a_missed_day_is_caught_up_that_day_only(app, people):
    assert jobs_run(app, "festival_notices", "2026-09-19T09:00") == 0  # the day after: never
    assert jobs_run(app, "festival_notices", "2026-09-18T15:30") == 3  # late the same day


def test_army_day_goes_to_military_cadres_only(app, people):
    assert jobs_run(app, "festival_notices", "2026-07-25T09:00") == 1
    assert "八一将至" in sent(app, people.veteran)[0]
    assert sent(app, people.cadre) == [] and sent(app, people.family) == []
    assert jobs_run(app, "festival_greetings", "2026-08-01T09:00") == 1
    assert "向您致以八一的问候" in sent(app, people.veteran)[-1]
    assert sent(app, people.cadre) == []


def test_notice_for_a_festival_in_the_next_year_and_a_longer_lead(app, people):
    assert jobs_run(app, "festival_notices", "2025-12-25T09:00") == 3  # 元旦 2026
    assert campaigns(app, people.cadre) == ["festival:new_year:2026:notice"]
    assert "组织将于12月26日至12月31日期间" in sent(app, people.cadre)[0]
    assert jobs_run(app, "festival_notices", "2026-02-10T09:00") == 3  # 春节 2026-02-17
    assert jobs_run(app, "festival_notices", "2026-10-08T09:00") == 3  # 重阳: 10 days ahead
    assert jobs_run(app, "festival_notices", "2026-10-11T09:00") == 0
    # 除夕 has no visit: 2026-02-09 (7 days before 2026-02-16) sends nothing.
    assert jobs_run(app, "festival_notices", "2026-02-09T09:00") == 0


def test_notice_in_quiet_hours_waits_for_the_morning(make_app, config_path, people):
    app = make_app(extra={"festivals": str(config_path)}, quiet_hours="21:00-08:00")
    yl = app.extensions["yinling"]
    spec = next(j for j in festival_jobs if j.name == "festival_notices")
    with time_machine.travel(at("2026-09-18T22:30"), tick=False):  # a late catch-up run
        assert run_job(yl, spec, at("2026-09-18T22:30")) == 3
        with db(app) as s:
            rows = s.execute(select(Delivery.not_before, Delivery.status)).all()
    assert set(rows) == {(at("2026-09-19T08:00"), "pending")}


# ---- answers through the webhook -----------------------------------------------------------
def test_cadre_and_family_answer_and_the_latest_answer_counts(app, wx, people):
    jobs_run(app, "festival_notices", "2026-09-18T09:00")
    with time_machine.travel(at("2026-09-20T10:00"), tick=False):
        reply = wx.text(people.cadre, "走访 ９月２２日上午。")
        assert "已记下您方便的走访时间：9月22日上午（中秋节，9月25日）" in reply
        assert "如有变化" in reply
        assert visits(app)[0][3:] == (TIME, "9月22日上午", False)
        reply = wx.text(people.family, "不在家")
        assert "已记下王建国同志中秋节期间不在家" in reply
        assert visits(app)[0][3:] == (AWAY, None, True)
        assert "已记下您方便的走访时间：周六下午" in wx.voice(people.cadre, "走访，周六下午。")
    with db(app) as s:
        row = s.scalar(select(FestivalVisit).where(FestivalVisit.cadre_id == people.wang_id))
        assert (row.answered_by, row.on_behalf, row.preferred_time) == \
            (people.cadre, False, "周六下午")


def test_visit_alone_asks_for_the_time_and_forgives(app, wx, people):
    jobs_run(app, "festival_notices", "2026-09-18T09:00")
    with time_machine.travel(at("2026-09-20T10:00"), tick=False):
        ask = wx.text(people.veteran, "走访")
        assert "中秋节（9月25日）走访" in ask and "9月19日至9月24日" in ask
        photo = wx.xml(people.veteran, "image", PicUrl="http://mmbiz.example/p.jpg",
                       MediaId="P1")
        assert "没听明白" in wx.reply_of(wx.post_xml(photo))
        assert "没听明白" in wx.text(people.veteran, "2")  # a bare number is no time
        assert "已取消" in wx.text(people.veteran, "取消")
        assert visits(app)[1][3] is None
        assert "请问您哪天什么时候方便" in wx.text(people.veteran, "走访 1")
        assert "不在家" in wx.text(people.veteran, "我不在家。")
        assert visits(app)[1][3] == AWAY
        wx.text(people.veteran, "走访")
        assert "方便的走访时间：下周一" in wx.text(people.veteran, "走访 下周一")
        assert visits(app)[1][3:5] == (TIME, "下周一")


def test_answers_without_a_pending_notice_get_a_kind_sentence(app, wx, people):
    with time_machine.travel(at("2026-09-20T10:00"), tick=False):
        assert "目前没有需要您答复的走访通知" in wx.text(people.cadre, "走访 周六")
        assert "目前没有需要您答复的走访通知" in wx.text(people.cadre, "不在家")
        assert "请先绑定" in wx.text(people.stranger, "走访 周六")
    jobs_run(app, "festival_notices", "2026-09-18T09:00")
    with time_machine.travel(at("2026-09-26T10:00"), tick=False):  # 中秋 is over
        assert "目前没有需要您答复的走访通知" in wx.text(people.cadre, "走访 周六")
    assert all(v[3] is None for v in visits(app))


def test_answer_goes_to_the_most_recent_notice_still_ahead(app, wx, people):
    # 2025: 国庆 (10-01, notice 09-24) and 中秋 (10-06, notice 09-29) overlap.
    jobs_run(app, "festival_notices", "2025-09-24T09:00")
    with time_machine.travel(at("2025-09-25T10:00"), tick=False):
        assert "（国庆节，10月1日）" in wx.text(people.cadre, "走访 9月28日")
    jobs_run(app, "festival_notices", "2025-09-29T09:00")
    with time_machine.travel(at("2025-09-30T10:00"), tick=False):
        assert "（中秋节，10月6日）" in wx.text(people.cadre, "走访 10月3日")
    answered = {(v[0], v[4]) for v in visits(app) if v[2] == people.wang_id}
    assert answered == {("national_day", "9月28日"), ("mid_autumn", "10月3日")}
    # Naming the festival picks it even when another notice came later.
    with time_machine.travel(at("2025-09-30T11:00"), tick=False):
        assert "（国庆节，10月1日）" in wx.text(people.cadre, "走访 国庆 9月30日下午")
        assert "国庆节期间不在家" in wx.text(people.family, "不在家 国庆节")
    answered = {(v[0], v[3], v[4]) for v in visits(app) if v[2] == people.wang_id}
    assert ("mid_autumn", "time", "10月3日") in answered
    assert ("national_day", "away", None) in answered


# ---- the staff's list -------------------------------------------------------------------------
def test_staff_list_answers_by_festival(app, wx, people):
    jobs_run(app, "festival_notices", "2026-09-18T09:00")
    with time_machine.travel(at("2026-09-20T10:00"), tick=False):
        wx.text(people.family, "走访 周二上午")
        listing = wx.text(people.staff, "走访安排 中秋")
        assert "【走访安排】中秋节（2026年9月25日）" in listing
        assert "已通知2位，已答复1位" in listing
        assert "1. 王建国（幸福社区，13800001001）[家属答复]：周二上午" in listing
        silent = listing.split("未答复（1位）")[1]
        assert "李秀英（光明社区，13800001002）" in silent
        assert wx.text(people.staff, "走访安排") == listing  # the next festival: 中秋
        wx.text(people.veteran, "不在家")
        assert "不在家（1位）：\n1. 李秀英" in wx.text(people.boss, "走访安排 中秋节。")


def test_staff_list_before_notices_and_bad_names(app, wx, people):
    with time_machine.travel(at("2026-09-20T10:00"), tick=False):
        early = wx.text(people.staff, "走访安排 敬老节")
        assert "重阳节（2026年10月18日）" in early and "走访通知将于10月8日发出" in early
        unknown = wx.text(people.staff, "走访安排 圣诞节")
        assert "没有找到“圣诞节”" in unknown and "中秋节" in unknown and "除夕" not in unknown
        assert "只发节日问候" in wx.text(people.staff, "走访安排 除夕")


def test_staff_list_after_the_festival_still_shows_it(app, wx, people):
    jobs_run(app, "festival_notices", "2026-09-18T09:00")
    with time_machine.travel(at("2026-09-28T10:00"), tick=False):
        assert "中秋节（2026年9月25日）" in wx.text(people.staff, "走访安排 中秋")
        assert "国庆节（2026年10月1日）" in wx.text(people.staff, "走访安排")


def test_cadres_and_strangers_may_not_see_the_staff_list(app, wx, people):
    jobs_run(app, "festival_notices", "2026-09-18T09:00")
    with time_machine.travel(at("2026-09-20T10:00"), tick=False):
        for who in (people.cadre, people.family, people.stranger):
            reply = wx.text(who, "走访安排 中秋")
            assert "没有权限" in reply and "王建国（" not in reply
    assert "节日走访安排" in wx.text(people.staff, "菜单")
    assert "节日走访安排" not in wx.text(people.cadre, "菜单")


# ---- greetings ---------------------------------------------------------------------------------
def test_greeting_on_the_day_once_to_the_audience(app, people):
    assert jobs_run(app, "festival_greetings", "2026-09-24T09:00") == 0
    assert jobs_run(app, "festival_greetings", "2026-09-25T09:00") == 3
    assert "尊敬的王建国同志：\n中秋节快乐，花好月圆！" in sent(app, people.cadre)[0]
    assert "请转告您的家人王建国同志" in sent(app, people.family)[0]
    assert sent(app, people.gone) == []
    assert campaigns(app, people.veteran) == ["festival:mid_autumn:2026:greeting"]
    assert jobs_run(app, "festival_greetings", "2026-09-25T09:00") == 0
    assert jobs_run(app, "festival_greetings", "2026-02-16T09:00") == 3  # 除夕: greeting only
    assert "除夕快乐" in sent(app, people.cadre)[-1]


def test_resubscribing_brings_the_greetings_back(app, wx, people):
    wx.event(people.gone, "subscribe")
    assert jobs_run(app, "festival_greetings", "2026-10-01T09:00") == 4
    assert "国庆快乐" in sent(app, people.gone)[-1]
    wx.event(people.gone, "unsubscribe")
    assert jobs_run(app, "festival_greetings", "2027-01-01T09:00") == 3


# ---- birthdays ---------------------------------------------------------------------------------
def test_birthday_greeting_on_the_day_once(app, people):
    assert jobs_run(app, "birthday_greetings", "2026-10-04T08:00") == 0
    assert jobs_run(app, "birthday_greetings", "2026-10-05T08:00") == 2  # 王建国 and family
    assert "今天是您80岁生日" in sent(app, people.cadre)[0]
    assert "王建国同志的80岁生日" in sent(app, people.family)[0]
    assert sent(app, people.gone) == []  # unfollowed (赵大海 shares the birthday)
    assert jobs_run(app, "birthday_greetings", "2026-10-05T08:00") == 0
    assert campaigns(app, people.cadre) == [f"birthday:{people.wang_id}:2026"]


def test_leap_day_birthday_is_kept_on_28_february_in_common_years(app, people):
    assert jobs_run(app, "birthday_greetings", "2026-02-28T08:00") == 1
    assert "今天是您90岁生日" in sent(app, people.veteran)[0]
    assert jobs_run(app, "birthday_greetings", "2028-02-28T08:00") == 0
    assert jobs_run(app, "birthday_greetings", "2028-02-29T08:00") == 1


def test_milestone_birthdays_tell_on_duty_staff_a_week_ahead(app, people):
    assert jobs_run(app, "birthday_greetings", "2026-09-28T08:00") == 1  # 80 on 10-05
    [note] = sent(app, people.staff)
    assert "【整寿走访提醒】10月5日有2位老同志过整寿" in note  # 钱老 is inactive
    assert "王建国，80岁，13800001001，幸福社区，幸福路1号" in note
    assert "赵大海，80岁，13800001003" in note
    assert sent(app, people.boss) == []
    assert jobs_run(app, "birthday_greetings", "2026-09-28T08:00") == 0
    assert jobs_run(app, "birthday_greetings", "2026-09-29T08:00") == 0


def test_milestone_goes_to_supervisors_when_nobody_is_on_duty(app, people):
    with db(app) as s:
        s.scalar(select(Staff).where(Staff.name == "张干事")).on_duty = False
    assert jobs_run(app, "birthday_greetings", "2026-03-03T08:00") == 1  # 孙老 90 on 03-10
    note = sent(app, people.boss)[0]
    assert "孙老，90岁，13800001004，和平社区（未绑定微信）" in note
    assert sent(app, people.staff) == []
    # 李秀英 (29 Feb) turns 90 on 2026-02-28: staff hear of it on 02-21.
    assert jobs_run(app, "birthday_greetings", "2026-02-21T08:00") == 1
    assert "2月28日" in sent(app, people.boss)[-1] and "李秀英，90岁" in sent(app, people.boss)[-1]


# ---- service units ---------------------------------------------------------------------------
def test_service_notices_due_and_pending_answers(app, cal, people):
    assert [(f.key, d) for f, d in service.notices_due(cal, date(2026, 9, 18))] == \
        [("mid_autumn", date(2026, 9, 25))]
    assert [(f.key, d) for f, d in service.notices_due(cal, date(2026, 10, 8))] == \
        [("double_ninth", date(2026, 10, 18))]
    assert service.notices_due(cal, date(2026, 2, 9)) == []  # 除夕 has no visit
    with db(app) as s:
        assert [c.name for c in service.audience(s)] == ["王建国", "李秀英", "赵大海"]
        assert [c.name for c in service.audience(s, military_only=True)] == ["李秀英"]
        assert service.recipients(s, people.wang_id) == [(people.cadre, False),
                                                         (people.family, True)]
        pushes = []
        made = service.notify_visit(s, cal, cal.get("mid_autumn"), date(2026, 9, 25),
                                    at("2026-09-18T09:00"),
                                    lambda *a, **k: pushes.append((a, k)) or object())
        assert made == 3 and len(pushes) == 3
        assert service.pending_visit(s, people.wang_id, date(2026, 9, 25)) is not None
        assert service.pending_visit(s, people.wang_id, date(2026, 9, 26)) is None
        visit = service.pending_visit(s, people.wang_id, date(2026, 9, 20))
        service.record_answer(s, visit, "周六" * 200, people.cadre, False,
                              at("2026-09-20T10:00"))
        assert visit.answer == TIME and len(visit.preferred_time) == service.MAX_TIME_TEXT
        view = service.arrangements(s, cal.get("mid_autumn"), date(2026, 9, 25))
        assert (view.noticed, len(view.times), len(view.away), len(view.silent)) == (2, 1, 0, 1)
        assert service.next_visit(cal, date(2026, 9, 26))[0].key == "national_day"
        assert service.occurrence_for_staff(s, cal.get("mid_autumn"), date(2026, 9, 27)) == \
            date(2026, 9, 25)
        assert service.occurrence_for_staff(s, cal.get("mid_autumn"), date(2026, 11, 1)) == \
            date(2027, 9, 15)


def test_jobs_are_exposed_with_their_triggers():
    triggers = {j.name: j.trigger for j in festival_jobs}
    assert triggers == {"festival_notices": {"trigger": "cron", "hour": 9, "minute": 0},
                        "festival_greetings": {"trigger": "cron", "hour": 9, "minute": 0},
                        "birthday_greetings": {"trigger": "cron", "hour": 8, "minute": 0}}
