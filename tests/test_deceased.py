"""Who must not be pushed (issue 10, item 6): a cadre marked 已故 — by the roster's column or
`roster deceased PHONE` — gets no greeting, reminder, visit notice or broadcast, and neither
does their family about them; bindings and history are kept, and the family can still chat."""
from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select

from models import Binding, Cadre, Delivery, Follower
from models.fees import FeeItem
from models.groups import BroadcastGroup, GroupMember
from tests.conftest import db, oid
from tests.wx import WeChat

WANG, LI = "13800001001", "13800001002"
HEADER = "姓名,手机号,出生日期,已故"


@pytest.fixture
def story(app):
    """王建国 (with a daughter) and 李秀英, both bound, both owing 党费, in one group."""
    people = {"wang": oid("wang"), "daughter": oid("daughter"), "li": oid("li"),
              "admin": oid("admin")}
    with db(app) as s:
        wang = Cadre(name="王建国", phone=WANG, birth_date=date(1946, 10, 5))
        li = Cadre(name="李秀英", phone=LI, birth_date=date(1936, 2, 29))
        admin = Cadre(name="周会长", phone="13800001009")
        group = BroadcastGroup(name="书画协会")
        s.add_all([wang, li, admin, group])
        s.flush()
        s.add_all([Binding(openid=people["wang"], cadre_id=wang.id, relation="self"),
                   Binding(openid=people["daughter"], cadre_id=wang.id, relation="family"),
                   Binding(openid=people["li"], cadre_id=li.id, relation="self"),
                   Binding(openid=people["admin"], cadre_id=admin.id, relation="self"),
                   *[GroupMember(group_id=group.id, cadre_id=c.id) for c in (wang, li)],
                   GroupMember(group_id=group.id, cadre_id=admin.id, is_admin=True),
                   *[FeeItem(cadre_id=c.id, fee_type="党费", period="2026-11", amount_fen=5000)
                     for c in (wang, li)],
                   *[Follower(openid=o) for o in people.values()]])
    return people


def cli(app, *args) -> str:
    result = app.test_cli_runner().invoke(args=list(args))
    assert result.exit_code == 0, result.output
    return result.output


def pushed_to(app, openid: str) -> list[str]:
    with db(app) as s:
        return list(s.scalars(select(Delivery.campaign).where(Delivery.openid == openid)))


def deceased_on(app, phone: str):
    with db(app) as s:
        return s.scalar(select(Cadre.deceased_on).where(Cadre.phone == phone))


def test_no_reminder_visit_notice_or_greeting_reaches_a_deceased_cadre_or_family(app, story):
    assert "marked deceased" in cli(app, "roster", "deceased", WANG)
    assert cli(app, "jobs", "run", "fee_reminders", "--now", "2026-11-05T09:30").strip() \
        == "fee_reminders: 1"
    cli(app, "jobs", "run", "festival_notices", "--now", "2026-09-18T09:00")
    cli(app, "jobs", "run", "festival_greetings", "--now", "2026-09-25T09:00")
    cli(app, "jobs", "run", "birthday_greetings", "--now", "2026-10-05T09:00")
    assert pushed_to(app, story["wang"]) == [] and pushed_to(app, story["daughter"]) == []
    li = pushed_to(app, story["li"])
    assert any(c.startswith("fees:") for c in li) and any("mid_autumn" in c for c in li)
    with db(app) as s:  # bindings kept: the family can still read and ask
        assert s.scalar(select(Binding.id).where(Binding.openid == story["daughter"]))
    assert "请回复数字选择" in WeChat(app).text(story["daughter"], "菜单")


def test_a_broadcast_skips_a_deceased_member_and_their_family(app, story):
    cli(app, "roster", "deceased", WANG)
    wx = WeChat(app)
    wx.text(story["admin"], "群发")
    preview = wx.text(story["admin"], "本周五上午九点在活动中心开展书画交流活动")
    assert "将发给：2人" in preview          # 李秀英 and the admin; not 王建国 nor his daughter
    assert "发送" in wx.text(story["admin"], "1")
    with db(app) as s:
        told = set(s.scalars(select(Delivery.openid).where(Delivery.campaign.like("broadcast:%"))))
    assert story["li"] in told
    assert story["wang"] not in told and story["daughter"] not in told


def test_the_roster_column_marks_and_a_mistake_is_undone(app, story, tmp_path):
    path = tmp_path / "r.csv"
    path.write_text(f"{HEADER}\n王建国,{WANG},1946-10-05,已故\n李秀英,{LI},1936-02-29,\n",
                    encoding="utf-8")
    assert "rejected 0" in cli(app, "roster", "import", str(path))
    assert deceased_on(app, WANG) is not None and deceased_on(app, LI) is None
    path.write_text(f"{HEADER}\n王建国,{WANG},1946-10-05,\n", encoding="utf-8")
    cli(app, "roster", "import", str(path))                  # blank: left as it was
    assert deceased_on(app, WANG) is not None
    path.write_text(f"{HEADER}\n王建国,{WANG},1946-10-05,也许\n", encoding="utf-8")
    assert "已故应填" in cli(app, "roster", "import", str(path))
    assert "marked not deceased" in cli(app, "roster", "deceased", WANG, "--undo")
    assert deceased_on(app, WANG) is None
    assert "already not deceased" in cli(app, "roster", "deceased", WANG, "--undo")
