"""Fees (PRODUCT.md 7.1) end to end: ledger import (csv BOM/GBK, xlsx, bad rows, re-import),
status in chat for cadre and family, staff marking paid, branch statistics, step reminders."""
from __future__ import annotations

import csv
import io
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
import time_machine
from sqlalchemy import func, select

from bot.jobs import run_job
from bot.settings import SettingsError
from bot.tables import RowError
from handlers.fees import check
from handlers.fees.config import FeeConfigError, parse_config
from handlers.fees.importer import parse_row
from handlers.fees.jobs import build_jobs, campaign_of
from handlers.fees.service import (
    FeeRefusal,
    branch_stats,
    due_step,
    fee_status,
    mark_paid,
    parse_period,
    previous_period,
    yuan,
)
from models import Binding, Cadre, Delivery, Follower, Staff
from models.fees import FeeEvent, FeeItem
from tests.conftest import db, oid, sent

TZ = ZoneInfo("Asia/Shanghai")
NOV_10 = datetime(2026, 11, 10, 10, 0, tzinfo=TZ)
CONFIG = """
reminder:
  time: "09:30"
  step_days: [5, 15, 25]
stats_fee_types: []
how_to_pay: |
  到所在党支部交给支部委员。
"""
HEADER = ["手机号", "费用类型", "期间", "金额", "已缴", "缴费日期"]
WANG, LI, ZHAO = "13800001001", "13800001002", "13800001003"


@pytest.fixture
def app(make_app, tmp_path):
    """The app, reading this test's fee configuration."""
    path = tmp_path / "fees.yaml"
    path.write_text(CONFIG, encoding="utf-8")
    return make_app(extra={"fees_config": str(path)})


@dataclass
class People:
    """Openids and ids of everyone in the story."""

    cadre: str       # 王建国, 第一党支部
    family: str      # 王建国's daughter
    li: str          # 李四, 第二党支部
    li_family: str   # 李四's son, who unsubscribed
    staff: str       # 张会计
    stranger: str    # follows, bound to nobody
    wang_id: int
    li_id: int
    zhao_id: int     # 赵六, 第一党支部, not on WeChat


@pytest.fixture
def people(app) -> People:
    """Three cadres in two branches, family (one unsubscribed) and a staff member."""
    oids = [oid(t) for t in ("cadre", "family", "li", "lifam", "staff", "stranger")]
    with db(app) as s:
        wang = Cadre(name="王建国", phone=WANG, branch="第一党支部")
        li = Cadre(name="李四", phone=LI, branch="第二党支部")
        zhao = Cadre(name="赵六", phone=ZHAO, branch="第一党支部")
        s.add_all([wang, li, zhao])
        s.flush()
        s.add_all([Binding(openid=oids[0], cadre_id=wang.id, relation="self"),
                   Binding(openid=oids[1], cadre_id=wang.id, relation="family"),
                   Binding(openid=oids[2], cadre_id=li.id, relation="self"),
                   Binding(openid=oids[3], cadre_id=li.id, relation="family"),
                   Follower(openid=oids[3], subscribed=False),
                   Staff(name="张会计", openid=oids[4], on_duty=True)])
        ids = (wang.id, li.id, zhao.id)
    return People(*oids, *ids)


def write_csv(path, rows, *, encoding="utf-8-sig", header=HEADER):
    """A ledger CSV in the given encoding (utf-8-sig writes the BOM Excel adds)."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(header)
    writer.writerows(rows)
    path.write_bytes(buf.getvalue().encode(encoding))
    return path


def fees_import(app, path):
    """Run `fees import PATH` through the Flask CLI."""
    return app.test_cli_runner().invoke(args=["fees", "import", str(path)])


def items(app, cadre_id=None) -> list[tuple]:
    """(phone, type, period, fen, paid, paid_on, source, by) of every ledger item."""
    with db(app) as s:
        q = select(Cadre.phone, FeeItem.fee_type, FeeItem.period, FeeItem.amount_fen,
                   FeeItem.paid, FeeItem.paid_on, FeeItem.paid_source, FeeItem.paid_by) \
            .join(Cadre, Cadre.id == FeeItem.cadre_id).order_by(FeeItem.id)
        if cadre_id is not None:
            q = q.where(FeeItem.cadre_id == cadre_id)
        return [tuple(r) for r in s.execute(q)]


def ledger(app, tmp_path, rows):
    """Import rows (asserting success) and return the CLI output."""
    result = fees_import(app, write_csv(tmp_path / f"l-{uuid.uuid4().hex[:6]}.csv", rows))
    assert result.exit_code == 0, result.output
    assert "rejected 0" in result.output, result.output
    return result.output


def run_reminders(app, iso: str):
    """`jobs run fee_reminders --now ISO` through the CLI; returns the count it printed."""
    result = app.test_cli_runner().invoke(args=["jobs", "run", "fee_reminders", "--now", iso])
    assert result.exit_code == 0, result.output
    return int(result.output.strip().rsplit(":", 1)[1])


# ---- import --------------------------------------------------------------------------------
def test_import_csv_with_bom_adds_good_rows_and_rejects_bad_ones(app, people, tmp_path):
    path = write_csv(tmp_path / "ledger.csv", [
        [WANG, "党费", "2026-11", "50", "否", ""],
        [WANG, "党费", "2026-10", "50.00", "是", "2026-10-08"],
        ["13900009999", "党费", "2026-11", "50", "否", ""],    # row 4: not in the roster
        [LI, "党费", "2026-13", "30", "否", ""],               # row 5: no 13th month
        [LI, "党费", "2026-11", "三十", "否", ""],             # row 6: amount
        [LI, "党费", "2026-11", "30", "也许", ""],             # row 7: 已缴
        [LI, "党费", "2026-10", "30", "是", "2026-02-30"],     # row 8: no such date
        [LI, "党费", "2026-11", "-5", "否", ""],               # row 9: negative
        [LI, "党费", "2026-11", "30.456", "否", ""],           # row 10: fractions of a fen
        [LI, "党费", "2026-11", "30", "否", ""],
        [LI, "党费", "2026-11", "30", "否", ""],               # row 12: same item twice
        [LI, "", "2026-11", "30", "否", ""],                   # row 13: no fee type
        ["1380000", "党费", "2026-11", "30", "否", ""],        # row 14: short phone
        [LI, "活动费", "2026-11", "20", "否", "2026-11-01"],   # row 15: dated but unpaid
    ])
    result = fees_import(app, path)
    assert result.exit_code == 0, result.output
    out = result.output
    assert "rejected row 4: 花名册里没有手机号 13900009999" in out
    assert "rejected row 5: 期间应为“年-月”（如 2026-11）：2026-13" in out
    assert "rejected row 6: 金额应为" in out and "三十" in out
    assert "rejected row 7: 已缴应填“是”或“否”：也许" in out
    assert "rejected row 8: 缴费日期无法识别：2026-02-30" in out
    assert "rejected row 9: 金额应为" in out and "rejected row 10: 金额应为" in out
    assert "rejected row 12: 与第11行是同一人、同一费用、同一期间" in out
    assert "rejected row 13: 缺少费用类型" in out
    assert "rejected row 14: 手机号应为11位数字" in out
    assert "rejected row 15: 已缴为“否”却填了缴费日期" in out
    assert out.strip().endswith("added 3, updated 0, rejected 11")
    assert items(app) == [
        (WANG, "党费", "2026-11", 5000, False, None, None, None),
        (WANG, "党费", "2026-10", 5000, True, date(2026, 10, 8), "import", None),
        (LI, "党费", "2026-11", 3000, False, None, None, None)]


def test_import_gbk_with_padded_headers_and_extra_columns(app, people, tmp_path):
    header = [" 手机号 ", "姓名", "费用类型 ", "期间", "金额", "已缴", "备注"]
    path = write_csv(tmp_path / "gbk.csv", [
        [WANG, "王建国", "党费", "2026年11月", "￥50元", "是", "现金"],
        [LI, "李四", "老干部活动费", "2026/9", "1,200.5", "否", ""],
    ], encoding="gbk", header=header)
    result = fees_import(app, path)
    assert result.exit_code == 0, result.output
    assert "added 2, updated 0, rejected 0" in result.output
    assert items(app) == [(WANG, "党费", "2026-11", 5000, True, None, "import", None),
                          (LI, "老干部活动费", "2026-09", 120050, False, None, None, None)]


def test_import_xlsx_written_by_openpyxl(app, people, tmp_path):
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.title = "台账"
    ws.append(HEADER + ["备注"])
    ws.append([int(WANG), "党费", "2026-11", 50, "否", None, "x"])
    ws.append([LI, "党费", datetime(2026, 10, 1), 30.5, "是", datetime(2026, 10, 9)])
    ws.append([ZHAO, "党费", "2026-11", 40, "是", "2030-01-01"])  # paid in the future
    ws.append([None, None, None, None, None, None])  # blank rows are ignored
    path = tmp_path / "ledger.xlsx"
    wb.save(path)
    result = fees_import(app, path)
    assert result.exit_code == 0, result.output
    assert "rejected row 4: 缴费日期不合理" in result.output
    assert "added 2, updated 0, rejected 1" in result.output
    assert items(app) == [(WANG, "党费", "2026-11", 5000, False, None, None, None),
                          (LI, "党费", "2026-10", 3050, True, date(2026, 10, 9), "import", None)]


def test_reimport_updates_the_item_and_never_duplicates(app, people, tmp_path):
    ledger(app, tmp_path, [[WANG, "党费", "2026-11", "50", "否", ""],
                           [LI, "党费", "2026-11", "30", "是", "2026-11-02"]])
    out = ledger(app, tmp_path, [[WANG, "党费", "2026-11", "55", "是", "2026-11-03"],
                                 [LI, "党费", "2026-11", "30", "否", ""],
                                 [WANG, "活动费", "2026-11", "10", "否", ""]])
    assert "added 1, updated 2, rejected 0" in out
    assert items(app) == [(WANG, "党费", "2026-11", 5500, True, date(2026, 11, 3), "import", None),
                          (LI, "党费", "2026-11", 3000, False, None, None, None),
                          (WANG, "活动费", "2026-11", 1000, False, None, None, None)]
    with db(app) as s:
        assert s.scalar(select(func.count(FeeItem.id))) == 3
        kinds = [e.kind for e in s.scalars(select(FeeEvent).order_by(FeeEvent.id))]
    assert kinds == ["added", "added", "updated", "updated", "added"]
    ledger(app, tmp_path, [[WANG, "活动费", "2026-11", "10", "否", ""]])  # unchanged: no event
    with db(app) as s:
        assert s.scalar(select(func.count(FeeEvent.id))) == 5


def test_reimport_does_not_undo_a_payment_staff_took_in_chat(app, wx, people, tmp_path):
    ledger(app, tmp_path, [[WANG, "党费", "2026-11", "50", "否", ""]])
    with time_machine.travel(NOV_10, tick=False):
        assert "已登记" in wx.text(people.staff, f"已缴 {WANG} 2026-11")
    result = fees_import(app, write_csv(tmp_path / "old.csv",
                                        [[WANG, "党费", "2026-11", "50", "否", ""]]))
    assert "note row 2: 工作人员张会计已在微信登记为已缴（2026-11-10）" in result.output
    assert "added 0, updated 1, rejected 0" in result.output
    assert items(app)[0][4:] == (True, date(2026, 11, 10), "chat", "张会计")


@pytest.mark.parametrize("name, content, message", [
    ("missing.csv", None, "no such file"),
    ("ledger.txt", "手机号\n", "only .csv and .xlsx"),
    ("empty.csv", "", "the file is empty"),
    ("columns.csv", "手机号,期间,金额\n13800001001,2026-11,50\n", "missing column(s) 费用类型, 已缴"),
    ("binary.csv", b"\xff\xfe\x00\x81\x30\x89", "not UTF-8 or GBK"),
    ("broken.xlsx", b"PK not really a workbook", "not a readable .xlsx"),
])
def test_unreadable_files_exit_non_zero(app, people, tmp_path, name, content, message):
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content, encoding="utf-8")
    result = fees_import(app, path)
    assert result.exit_code != 0
    assert message in result.output


def test_parse_row_reasons():
    today = date(2026, 11, 10)
    base = {"手机号": WANG, "费用类型": "党费", "期间": "2026-11", "金额": "50", "已缴": "否"}
    assert parse_row(base, today) == {"phone": WANG, "fee_type": "党费", "period": "2026-11",
                                      "amount_fen": 5000, "paid": False, "paid_on": None}
    for change, code in [({"期间": "26-11"}, "bad_period"), ({"期间": ""}, "missing_period"),
                         ({"金额": "0"}, "bad_amount"), ({"金额": "NaN"}, "bad_amount"),
                         ({"金额": ""}, "missing_amount"), ({"金额": "1e9"}, "bad_amount"),
                         ({"已缴": ""}, "bad_paid"), ({"手机号": ""}, "missing_phone"),
                         ({"已缴": "是", "缴费日期": "明天"}, "bad_date"),
                         ({"已缴": "是", "缴费日期": "1999-12-31"}, "implausible_date")]:
        with pytest.raises(RowError) as err:
            parse_row({**base, **change}, today)
        assert err.value.code == code, change
    paid = parse_row({**base, "已缴": "是", "缴费日期": "2026年11月3日", "金额": 12.5}, today)
    assert (paid["paid"], paid["paid_on"], paid["amount_fen"]) == (True, date(2026, 11, 3), 1250)


# ---- status in chat ------------------------------------------------------------------------
STATUS_ROWS = [[WANG, "党费", "2026-11", "50", "否", ""],
               [WANG, "活动费", "2026-11", "20", "否", ""],
               [WANG, "党费", "2026-10", "50", "是", "2026-10-08"],
               [WANG, "党费", "2026-08", "50", "否", ""],      # arrears
               [WANG, "党费", "2026-07", "50", "是", ""],      # old and paid: not shown
               [WANG, "党费", "2026-12", "50", "否", ""]]      # next month: not yet


def test_cadre_sees_this_and_last_month_arrears_total_and_how_to_pay(app, wx, people,
                                                                    tmp_path):
    ledger(app, tmp_path, STATUS_ROWS)
    with time_machine.travel(NOV_10, tick=False):
        reply = wx.text(people.cadre, "党费")
    assert "王建国同志，您的缴费情况" in reply
    assert "【2026年11月】\n党费 50.00元 未缴\n活动费 20.00元 未缴" in reply
    assert "【2026年10月】\n党费 50.00元 已缴（10月8日）" in reply
    assert "【更早未缴】\n2026年8月 党费 50.00元" in reply
    assert "2026年7月" not in reply and "2026年12月" not in reply
    assert "合计待缴：120.00元" in reply
    assert "缴费方式：\n到所在党支部交给支部委员。" in reply


def test_family_member_sees_the_cadres_fees_by_menu_click(app, wx, people, tmp_path):
    ledger(app, tmp_path, STATUS_ROWS)
    with time_machine.travel(NOV_10, tick=False):
        reply = wx.click(people.family, "MENU_FEES")
        assert reply == wx.text(people.family, "缴费。")
    assert reply.startswith("王建国的缴费情况") and "合计待缴：120.00元" in reply


def test_all_paid_and_nothing_on_record_get_kind_answers(app, wx, people, tmp_path):
    with time_machine.travel(NOV_10, tick=False):
        empty = wx.text(people.li, "党费")
        assert "近两个月（2026年10月、2026年11月）暂时没有缴费记录" in empty
        assert "请放心" in empty and "人工" in empty
        ledger(app, tmp_path, [[LI, "党费", "2026-11", "30", "是", "2026-11-02"]])
        paid = wx.text(people.li, "党费")
    assert "党费 30.00元 已缴（11月2日）" in paid and "【2026年10月】\n暂无记录" in paid
    assert "都已缴清" in paid and "合计待缴" not in paid and "缴费方式" not in paid


def test_unbound_user_is_asked_to_bind_first(app, wx, people):
    assert "请先绑定身份" in wx.text(people.stranger, "党费")
    assert "请先绑定身份" in wx.click(people.stranger, "MENU_FEES")


def test_fees_menu_entry_starts_the_status(app, wx, people):
    menu = wx.text(people.cadre, "菜单")
    line = next(ln for ln in menu.splitlines() if "查询党费" in ln)
    number = line.split(".")[0].strip()
    with time_machine.travel(NOV_10, tick=False):
        assert "暂时没有缴费记录" in wx.text(people.cadre, number)
    assert "党费统计" not in menu  # staff only


def test_status_uses_the_local_month(app, people, tmp_path):
    ledger(app, tmp_path, STATUS_ROWS)
    # 2026-11-30 17:00 UTC is already 1 December in Shanghai.
    with db(app) as s:
        status = fee_status(s, people.wang_id, "2026-12")
        assert [i.period for i in status.this_month] == ["2026-12"]
        assert [i.fee_type for i in status.last_month] == ["党费", "活动费"]
        assert [i.period for i in status.arrears] == ["2026-08"]
        assert yuan(status.owed_fen) == "170.00"


# ---- staff: marking paid ---------------------------------------------------------------------
def test_staff_marks_a_month_paid_records_who_and_tells_cadre_and_family(app, wx, people,
                                                                      tmp_path):
    ledger(app, tmp_path, STATUS_ROWS)
    with time_machine.travel(NOV_10, tick=False):
        reply = wx.text(people.staff, f"已缴 {WANG} 2026-11")
    assert f"已登记：王建国（{WANG}）2026年11月\n党费 50.00元\n活动费 20.00元" in reply
    assert "共70.00元，缴费日期2026年11月10日" in reply and "已通知王建国及家属（共2人）" in reply
    paid = [r for r in items(app, people.wang_id) if r[2] == "2026-11"]
    assert all(r[4:] == (True, date(2026, 11, 10), "chat", "张会计") for r in paid)
    with db(app) as s:
        events = s.scalars(select(FeeEvent).where(FeeEvent.kind == "paid")).all()
        assert [(e.actor, e.actor_openid) for e in events] == [("张会计", people.staff)] * 2
    assert "王建国同志，您的以下费用已登记缴纳（11月10日）" in sent(app, people.cadre)[-1]
    assert "您的家人王建国同志的以下费用已登记缴纳" in sent(app, people.family)[-1]
    with time_machine.travel(NOV_10, tick=False):
        again = wx.text(people.staff, f"已缴 {WANG} 2026年11月")
        assert "2026年11月的费用都已缴清，无需再登记" in again
        assert "党费 50.00元 已缴（11月10日）" in again
        status = wx.text(people.cadre, "党费")
    assert "党费 50.00元 已缴（11月10日）" in status and "合计待缴：50.00元" in status


@pytest.mark.parametrize("said", ["王建国11月党费现金交了", f"{WANG} 十一月的党费收到了，标一下已缴",
                                  "已缴 王建国 十一月", f"{WANG} 这个月的党费收了"])
def test_staff_marks_paid_by_name_or_a_month_without_its_year(app, wx, people, tmp_path, said):
    """A cadre's name stands for the phone; `11月` is this year's November once it has begun
    (last year's before)."""
    ledger(app, tmp_path, STATUS_ROWS)
    with time_machine.travel(NOV_10, tick=False):
        reply = wx.text(people.staff, said)
    assert f"已登记：王建国（{WANG}）2026年11月" in reply
    assert all(r[4] for r in items(app, people.wang_id) if r[2] == "2026-11")


def test_last_month_said_in_words(app, wx, people, tmp_path):
    ledger(app, tmp_path, STATUS_ROWS)
    with time_machine.travel(NOV_10, tick=False):
        assert "2026年10月的费用都已缴清" in wx.text(people.staff, "王建国上个月的党费交了")


def test_a_month_not_yet_begun_is_last_years():
    from handlers.fees.chat import parse_mark_args

    assert parse_mark_args(f"{WANG} 12月", "2026-11") == (WANG, "2025-12", None)
    assert parse_mark_args(f"{WANG} 11月", "2026-11") == (WANG, "2026-11", None)


def test_staff_marks_one_fee_type_with_full_width_input(app, wx, people, tmp_path):
    ledger(app, tmp_path, STATUS_ROWS)
    with time_machine.travel(NOV_10, tick=False):
        reply = wx.text(people.staff, "已缴 １３８００００１００１ ２０２６－１１ 活动费")
    assert "活动费 20.00元" in reply and "党费" not in reply.split("\n", 1)[1]
    assert [r[4] for r in items(app, people.wang_id) if r[2] == "2026-11"] == [False, True]


@pytest.mark.parametrize("text, expected", [
    ("已缴", "登记缴费请回复：已缴 手机号 年-月"),
    ("已缴 钱七 2026-11", "花名册里没有叫“钱七”的老同志"),
    ("已缴 1380000 2026-11", "“1380000”不是11位手机号"),
    (f"已缴 {WANG}", f"请写上缴的是哪个月，例如：已缴 {WANG} 2026-11"),
    (f"已缴 {WANG} 2026-13", "“2026-13”不是有效的月份"),
    (f"已缴 {WANG} 十三月", "“十三月”不是有效的月份"),
    ("已缴 13900009999 2026-11", "花名册里没有手机号为13900009999的老同志"),
    (f"已缴 {WANG} 2026-05", f"王建国（{WANG}）2026年5月没有缴费记录"),
    (f"已缴 {WANG} 2026-11 书报费", "2026年11月没有“书报费”的缴费记录"),
    (f"已缴 {WANG} 2026-10", "2026年10月的费用都已缴清"),
])
def test_mark_paid_answers_every_wrong_input(app, wx, people, tmp_path, text, expected):
    ledger(app, tmp_path, STATUS_ROWS)
    before = items(app)
    assert expected in wx.text(people.staff, text)
    assert items(app) == before


def test_cadre_trying_to_mark_paid_has_no_permission(app, wx, people, tmp_path, caplog):
    ledger(app, tmp_path, STATUS_ROWS)
    assert "没有权限" in wx.text(people.cadre, f"已缴 {WANG} 2026-11")
    assert "没有权限" in wx.text(people.family, "党费统计")
    assert "请先绑定身份" not in wx.text(people.stranger, "党费统计")
    assert not any(r[4] for r in items(app) if r[2] == "2026-11")
    assert "permission denied" in caplog.text


def test_mark_paid_service_refusals(app, people, tmp_path):
    ledger(app, tmp_path, [[WANG, "党费", "2026-11", "50", "否", ""]])
    now, today = NOV_10, NOV_10.date()
    with db(app) as s:
        with pytest.raises(FeeRefusal) as err:
            mark_paid(s, "13900000000", "2026-11", "张会计", None, today, now)
        assert err.value.code == "unknown_phone"
        with pytest.raises(FeeRefusal) as err:
            mark_paid(s, LI, "2026-11", "张会计", None, today, now)
        assert err.value.code == "no_items"
        marked = mark_paid(s, WANG, "2026-11", "张会计", None, today, now)
        assert (marked.cadre.name, marked.total_fen, len(marked.items)) == ("王建国", 5000, 1)
        with pytest.raises(FeeRefusal) as err:
            mark_paid(s, WANG, "2026-11", "张会计", None, today, now)
        assert err.value.code == "all_paid"


# ---- staff: statistics ---------------------------------------------------------------------
def test_statistics_per_branch_lowest_rate_first(app, wx, people, tmp_path):
    with db(app) as s:
        s.add(Cadre(name="钱七", phone="13800001004", branch=None))
    ledger(app, tmp_path, [
        [WANG, "党费", "2026-11", "50", "是", ""],
        [ZHAO, "党费", "2026-11", "40", "否", ""],
        [LI, "党费", "2026-11", "30", "否", ""],
        ["13800001004", "党费", "2026-11", "10", "是", ""],
        [LI, "党费", "2026-10", "30", "是", ""],  # another month: not counted
    ])
    with time_machine.travel(NOV_10, tick=False):
        reply = wx.text(people.staff, "党费统计")
        other = wx.text(people.staff, "党费统计 2026-10")
        empty = wx.text(people.staff, "党费统计 2025-01")
        bad = wx.text(people.staff, "党费统计 明年")
    lines = reply.splitlines()
    assert lines[0] == "2026年11月缴费情况（收缴率低的在前）："
    assert lines[1] == "1. 第二党支部：0/1项，0%，已收0.00元，未收30.00元"
    assert lines[2] == "2. 第一党支部：1/2项，50%，已收50.00元，未收40.00元"
    assert lines[3] == "3. 未填党支部：1/1项，100%，已收10.00元"
    assert "合计：2/4项，收缴率50%，已收60.00元，未收70.00元。" in reply
    assert "1. 第二党支部：1/1项，100%，已收30.00元" in other
    assert "2025年1月还没有缴费台账" in empty
    assert "“明年”不是有效的月份" in bad


def test_statistics_can_be_limited_to_fee_types(app, people, tmp_path):
    ledger(app, tmp_path, [[WANG, "党费", "2026-11", "50", "是", ""],
                           [WANG, "活动费", "2026-11", "20", "否", ""]])
    with db(app) as s:
        rows, total = branch_stats(s, "2026-11", ("党费",))
        assert [(r.branch, r.items, r.paid, r.paid_fen) for r in rows] == \
            [("第一党支部", 1, 1, 5000)]
        rows, total = branch_stats(s, "2026-11")
        assert (total.items, total.paid, total.due_fen, total.rate) == (2, 1, 7000, 0.5)


# ---- reminders -----------------------------------------------------------------------------
def reminder_rows(app) -> list[tuple[str, str, str]]:
    """(campaign, openid, kind) of every fee reminder queued."""
    with db(app) as s:
        return [tuple(r) for r in s.execute(
            select(Delivery.campaign, Delivery.openid, Delivery.kind)
            .where(Delivery.campaign.like("fees:%")).order_by(Delivery.id))]


def test_reminders_on_step_days_once_each_to_cadre_and_family(app, people, tmp_path):
    ledger(app, tmp_path, [[WANG, "党费", "2026-11", "50", "否", ""],
                           [WANG, "党费", "2026-09", "50", "否", ""],
                           [LI, "党费", "2026-11", "30", "否", ""],
                           [ZHAO, "党费", "2026-11", "40", "否", ""],  # nobody on WeChat
                           [LI, "活动费", "2026-12", "20", "否", ""]])  # next month's item
    assert run_reminders(app, "2026-11-04T09:30") == 0  # before the first step
    assert run_reminders(app, "2026-11-05T09:30") == 3
    assert run_reminders(app, "2026-11-05T09:30") == 0  # run twice: nothing twice
    assert run_reminders(app, "2026-11-06T09:30") == 0  # same step, already sent
    rows = reminder_rows(app)
    assert sorted(o for _, o, _ in rows) == sorted([people.cadre, people.family, people.li])
    assert {c for c, _, _ in rows} == {"fees:2026-11:step5"}
    assert {k for _, _, k in rows} == {"scheduled"}  # quiet hours apply
    assert sent(app, people.li_family) == []  # unsubscribed family member
    mine = sent(app, people.cadre)[0]
    assert mine.startswith("王建国同志，您好！您还有以下费用未缴")
    assert "2026年9月 党费 50.00元\n2026年11月 党费 50.00元\n合计：100.00元" in mine
    assert "到所在党支部交给支部委员" in mine
    assert sent(app, people.family)[0].startswith("您好！您的家人王建国同志还有以下费用未缴")
    assert "活动费" not in sent(app, people.li)[0]

    # 李四 pays (in chat); on the 15th only 王建国 and family are reminded, once.
    with time_machine.travel(NOV_10, tick=False):
        from tests.wx import WeChat
        WeChat(app).text(people.staff, f"已缴 {LI} 2026-11")
    assert run_reminders(app, "2026-11-15T09:30") == 2
    assert run_reminders(app, "2026-11-15T09:30") == 0
    assert [c for c, o, _ in reminder_rows(app) if o == people.li] == ["fees:2026-11:step5"]
    # Everything paid: the 25th sends nothing.
    with time_machine.travel(NOV_10, tick=False):
        WeChat(app).text(people.staff, f"已缴 {WANG} 2026-11")
        WeChat(app).text(people.staff, f"已缴 {WANG} 2026-09")
    assert run_reminders(app, "2026-11-25T09:30") == 0
    assert len(sent(app, people.cadre)) == 2 + 2  # two reminders, two paid notices


def test_missed_step_is_sent_by_the_next_daily_run_only_once(app, people, tmp_path):
    ledger(app, tmp_path, [[WANG, "党费", "2026-11", "50", "否", ""]])
    yl = app.extensions["yinling"]
    spec = build_jobs()[0]
    # Down on the 5th and 6th: the 7th sends step 5; the 20th sends step 15 (not 5 again).
    assert run_job(yl, spec, datetime(2026, 11, 7, 9, 30, tzinfo=TZ)) == 2
    assert run_job(yl, spec, datetime(2026, 11, 20, 9, 30, tzinfo=TZ)) == 2
    assert [c for c, _, _ in reminder_rows(app)] == [campaign_of("2026-11", 5)] * 2 + \
        [campaign_of("2026-11", 15)] * 2
    # A new month starts again at its own first step.
    assert run_job(yl, spec, datetime(2026, 12, 3, 9, 30, tzinfo=TZ)) == 0
    assert run_job(yl, spec, datetime(2026, 12, 5, 9, 30, tzinfo=TZ)) == 2


def test_reminders_skip_inactive_cadres(app, people, tmp_path):
    ledger(app, tmp_path, [[WANG, "党费", "2026-11", "50", "否", ""]])
    with db(app) as s:
        s.get(Cadre, people.wang_id).active = False
    assert run_reminders(app, "2026-11-05T09:30") == 0


def test_reminders_in_quiet_hours_wait_for_the_morning(make_app, tmp_path, people):
    path = tmp_path / "fees.yaml"
    path.write_text(CONFIG, encoding="utf-8")
    quiet = make_app(extra={"fees_config": str(path)}, quiet_hours="21:00-08:00")
    ledger(quiet, tmp_path, [[WANG, "党费", "2026-11", "50", "否", ""]])
    with time_machine.travel(datetime(2026, 11, 5, 7, 0, tzinfo=TZ), tick=False):
        assert run_reminders(quiet, "2026-11-05T07:00") == 2
        with db(quiet) as s:
            rows = s.execute(select(Delivery.not_before, Delivery.status).where(
                Delivery.campaign == "fees:2026-11:step5")).all()
    assert [tuple(r) for r in rows] == [(datetime(2026, 11, 5, 8, 0, tzinfo=TZ), "pending")] * 2


def test_job_is_registered_daily_at_the_configured_time(app):
    from bot.scheduler import job_registry

    spec = job_registry()["fee_reminders"]
    assert spec.trigger == {"trigger": "cron", "hour": 9, "minute": 30}
    result = app.test_cli_runner().invoke(args=["jobs", "list"])
    assert "fee_reminders" in result.output


# ---- units: periods, steps, configuration --------------------------------------------------
@pytest.mark.parametrize("text, expected", [
    ("2026-11", "2026-11"), ("2026-1", "2026-01"), ("2026/11", "2026-11"),
    ("2026.3", "2026-03"), ("2026年11月", "2026-11"), ("202611", "2026-11"),
    (date(2026, 2, 1), "2026-02"), ("2026-13", None), ("2026-00", None), ("1999-01", None),
    ("26-11", None), ("十一月", None), ("", None), (None, None), ("2026-11-05", None),
])
def test_parse_period(text, expected):
    assert parse_period(text) == expected


def test_previous_period_crosses_the_year():
    assert previous_period("2026-01") == "2025-12" and previous_period("2026-11") == "2026-10"


@pytest.mark.parametrize("today, expected", [
    (date(2026, 11, 4), None), (date(2026, 11, 5), 5), (date(2026, 11, 14), 5),
    (date(2026, 11, 15), 15), (date(2026, 11, 30), 25),
])
def test_due_step(today, expected):
    assert due_step((5, 15, 25), today) == expected


def test_due_step_past_month_end_means_last_day():
    assert due_step((10, 31), date(2026, 2, 27)) == 10
    assert due_step((10, 31), date(2026, 2, 28)) == 31


def test_config_defaults_and_errors():
    cfg = parse_config({"how_to_pay": "到支部缴纳"})
    assert (cfg.reminder_time.hour, cfg.reminder_time.minute, cfg.step_days) == (9, 30,
                                                                                (5, 15, 25))
    assert parse_config({"how_to_pay": "x", "reminder": {"time": 570}}).reminder_time.hour == 9
    for raw, words in [({"how_to_pay": ""}, "how_to_pay"),
                       ({"how_to_pay": "x", "reminder": {"time": "25:00"}}, "reminder.time"),
                       ({"how_to_pay": "x", "reminder": {"step_days": [0]}}, "step_days"),
                       ({"how_to_pay": "x", "reminder": {"step_days": [5, 5]}}, "twice"),
                       ({"how_to_pay": "x", "reminder": {"step_days": "5"}}, "step_days"),
                       ({"how_to_pay": "x", "stats_fee_types": "党费"}, "stats_fee_types"),
                       (["a list"], "mapping")]:
        with pytest.raises(FeeConfigError, match=words):
            parse_config(raw)


def test_shipped_config_is_valid():
    from handlers.fees.config import DEFAULT_PATH, load_config

    cfg = load_config()
    assert DEFAULT_PATH.name == "fees.yaml" and cfg.step_days == (5, 15, 25)
    assert cfg.how_to_pay and (cfg.reminder_time.hour, cfg.reminder_time.minute) == (9, 30)


@pytest.mark.parametrize("content", ["reminder: [unclosed", "reminder:\n  time: noon\n"
                                     "how_to_pay: x\n", None])
def test_a_broken_config_stops_the_start_with_a_clear_message(make_app, tmp_path, content):
    path = tmp_path / "fees.yaml"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(SettingsError, match="fees.yaml is not usable"):
        make_app(extra={"fees_config": str(path)})

    class Settings:
        extra = {"fees_config": str(path)}
    with pytest.raises(SettingsError):
        check(Settings())
