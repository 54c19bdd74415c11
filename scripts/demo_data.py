"""Demo data for `make run`: a few cadres, one bound demo user, a family member, one staff."""
from __future__ import annotations

from datetime import date

from sqlalchemy import func, select

from models import Binding, Cadre, Staff

CADRES = [
    ("王建国", "13800001001", "市财政局", "第一党支部", date(1941, 10, 12), False, "幸福路1号", "幸福社区"),
    ("李秀英", "13800001002", "市教育局", "第一党支部", date(1946, 3, 8), False, "和平街8号", "和平社区"),
    ("张振华", "13800001003", "军分区", "军休第一党支部", date(1936, 8, 1), True, "八一路3号", "八一社区"),
    ("刘桂兰", "13800001004", "市卫健委", "第二党支部", date(1950, 12, 1), False, "长青路22号", "长青社区"),
]


def is_empty(session) -> bool:
    """True when the roster has nobody in it."""
    return not session.scalar(select(func.count(Cadre.id)))


def load(session) -> int:
    """Insert the demo people; returns how many cadres were added."""
    cadres = [Cadre(name=n, phone=p, unit=u, branch=b, birth_date=d, is_military=m,
                    address=a, community=c) for n, p, u, b, d, m, a, c in CADRES]
    session.add_all(cadres)
    session.flush()
    session.add(Binding(openid="demo-cadre-1", cadre_id=cadres[0].id, relation="self"))
    session.add(Binding(openid="demo-family-1", cadre_id=cadres[0].id, relation="family"))
    session.add(Staff(name="赵敏", openid="demo-staff-1", role="supervisor", on_duty=True))
    return len(cadres)
