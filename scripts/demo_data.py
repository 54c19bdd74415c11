"""Demo data for `make run`: a few cadres, one bound demo user, a family member, one staff,
a fee ledger, a broadcast group the demo user administers, and a course open for sign-up."""
from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from models import Binding, Cadre, Staff
from models.courses import Course, CourseSession
from models.fees import FeeItem
from models.groups import BroadcastGroup, GroupMember

CADRES = [
    ("王建国", "13800001001", "市财政局", "第一党支部", date(1941, 10, 12), False, "幸福路1号", "幸福社区"),
    ("李秀英", "13800001002", "市教育局", "第一党支部", date(1946, 3, 8), False, "和平街8号", "和平社区"),
    ("张振华", "13800001003", "军分区", "军休第一党支部", date(1936, 8, 1), True, "八一路3号", "八一社区"),
    ("刘桂兰", "13800001004", "市卫健委", "第二党支部", date(1950, 12, 1), False, "长青路22号", "长青社区"),
]


DEFAULT_ZONE = ZoneInfo("Asia/Shanghai")


def is_empty(session) -> bool:
    """True when the roster has nobody in it."""
    return not session.scalar(select(func.count(Cadre.id)))


def load(session, zone: ZoneInfo = DEFAULT_ZONE) -> int:
    """Insert the demo people and their data; returns how many cadres were added."""
    cadres = [Cadre(name=n, phone=p, unit=u, branch=b, birth_date=d, is_military=m,
                    address=a, community=c) for n, p, u, b, d, m, a, c in CADRES]
    session.add_all(cadres)
    session.flush()
    session.add(Binding(openid="demo-cadre-1", cadre_id=cadres[0].id, relation="self"))
    session.add(Binding(openid="demo-family-1", cadre_id=cadres[0].id, relation="family"))
    session.add(Staff(name="赵敏", openid="demo-staff-1", role="supervisor", on_duty=True))
    today = datetime.now(zone).date()
    _fees(session, cadres, today)
    _group(session, cadres)
    _course(session, today, zone)
    return len(cadres)


def _fees(session, cadres, today: date) -> None:
    """This month's 党费 unpaid for everyone; last month's paid by all but the last cadre."""
    this = f"{today:%Y-%m}"
    first = today.replace(day=1)
    last = f"{first - timedelta(days=1):%Y-%m}"
    for i, cadre in enumerate(cadres):
        session.add(FeeItem(cadre_id=cadre.id, fee_type="党费", period=this, amount_fen=5000))
        paid = i < len(cadres) - 1
        session.add(FeeItem(cadre_id=cadre.id, fee_type="党费", period=last, amount_fen=5000,
                            paid=paid, paid_on=first if paid else None,
                            paid_source="import" if paid else None))


def _group(session, cadres) -> None:
    """第一党支部 as a broadcast group; the demo cadre (王建国) is its admin."""
    group = BroadcastGroup(name="第一党支部")
    session.add(group)
    session.flush()
    for i, cadre in enumerate(cadres[:2]):
        session.add(GroupMember(group_id=group.id, cadre_id=cadre.id, is_admin=i == 0))


def _course(session, today: date, zone: ZoneInfo) -> None:
    """A calligraphy class with three weekly sessions from next week, sign-up open 5 days."""
    course = Course(name="书法入门", venue="老干部活动中心二楼书画室", capacity=20,
                    deadline=today + timedelta(days=5))
    session.add(course)
    session.flush()
    for week in range(1, 4):
        day = today + timedelta(days=7 * week)
        session.add(CourseSession(course_id=course.id,
                                  starts_at=datetime.combine(day, time(9, 30), zone)))
