"""The ticket service on its own: a real unit of work (bot/work.py) over an in-memory SQLite
database, with a small fake outbox and no Flask, Redis or webhook (STYLE.md: services get
direct unit tests with a fake unit of work)."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from bot.context import Actor
from bot.settings import load_settings
from bot.work import Work
from handlers.issues import service
from handlers.issues.service import Refusal
from models import Base, Binding, Cadre, Follower, Staff
from models.issues import CLAIMED, RESOLVED

NOW = datetime(2026, 11, 30, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
DRAFT = {"category": "utilities", "description": "暖气不热", "urgent": False}


@dataclass
class Sent:
    openid: str
    template: str
    campaign: str | None
    values: dict


@dataclass
class FakeOutbox:
    """Records what a unit of work pushes and what it hands to the dispatcher."""

    sent: list = field(default_factory=list)
    dispatched: list = field(default_factory=list)

    def push(self, session, openid, template, values, *, campaign, kind, now):
        self.sent.append(Sent(openid, template, campaign, values))
        return self.sent[-1]

    def after_commit(self, deliveries) -> None:
        self.dispatched.extend(deliveries)


@dataclass
class FakeServices:
    settings: object
    outbox: FakeOutbox
    render: object = None


@pytest.fixture
def world():
    """(a function making a unit of work, the outbox, the people) on a fresh database."""
    engine = create_engine("sqlite://")
    Base.metadata.create_all(engine)
    outbox = FakeOutbox()
    services = FakeServices(load_settings({"env": "test"}, environ={}), outbox)
    session = Session(engine, expire_on_commit=False)
    cadre = Cadre(name="王建国", phone="13800001001")
    staff = [Staff(name="赵敏", openid="o-zhao", on_duty=True),
             Staff(name="钱进", openid="o-qian", on_duty=True),
             Staff(name="孙主任", openid="o-sun", role="supervisor")]
    session.add_all([cadre, *staff, Follower(openid="o-cadre")])
    session.flush()
    session.add_all([Binding(openid="o-cadre", cadre_id=cadre.id, relation="self"),
                     Binding(openid="o-child", cadre_id=cadre.id, relation="family")])
    session.flush()

    def work() -> Work:
        return Work(services=services, db=session, now=NOW)

    people = {"reporter": Actor("o-cadre", cadre.id, False), "zhao": staff[0],
              "qian": staff[1], "boss": staff[2]}
    yield work, outbox, people
    session.close()
    engine.dispose()


def to(outbox: FakeOutbox, template: str) -> list[str]:
    """Who was pushed `template`."""
    return [s.openid for s in outbox.sent if s.template == template]


def test_a_new_ticket_goes_to_its_category_staff_and_the_family(world):
    work, outbox, p = world
    ticket = service.create_ticket(work(), p["reporter"], DRAFT)
    assert to(outbox, "issues/staff_new") == ["o-zhao"]        # utilities → 赵敏 on duty
    assert to(outbox, "issues/family_new") == ["o-child"]      # not the reporter himself
    assert [e.kind for e in ticket.events] == ["created"]


def test_only_one_claim_wins_and_the_loser_is_told_who_has_it(world):
    work, outbox, p = world
    number = service.create_ticket(work(), p["reporter"], DRAFT).id
    ticket = service.claim(work(), p["zhao"], number)
    assert ticket.state == CLAIMED and ticket.assignee_id == p["zhao"].id
    with pytest.raises(Refusal) as refused:
        service.claim(work(), p["qian"], number)
    assert refused.value.code == "taken" and refused.value.values["assignee"] == "赵敏"
    assert to(outbox, "issues/reporter_claimed") == ["o-cadre"]


def test_resolving_tells_everyone_and_puts_the_rating_question_to_the_reporter(world):
    work, outbox, p = world
    number = service.create_ticket(work(), p["reporter"], DRAFT).id
    ticket = service.resolve(work(), p["zhao"], number, "已派人修好")   # claims it on the way
    assert ticket.state == RESOLVED and ticket.assignee_id == p["zhao"].id
    told = [s for s in outbox.sent if s.template == "issues/reporter_resolved"]
    assert {s.openid: s.values["ask_rating"] for s in told} == {"o-cadre": True,
                                                                 "o-child": False}
    db = work().db
    follower = db.scalar(select(Follower).where(Follower.openid == "o-cadre"))
    assert follower.rating_ticket_id == number
    assert follower.thread_kind == "ticket" and follower.thread_staff_id == p["zhao"].id


def test_reopening_withdraws_the_rating_question(world):
    work, outbox, p = world
    number = service.create_ticket(work(), p["reporter"], DRAFT).id
    service.resolve(work(), p["zhao"], number, "已派人修好")
    service.reopen(work(), p["boss"], number, "还是不热")
    follower = work().db.scalar(select(Follower).where(Follower.openid == "o-cadre"))
    assert follower.rating_ticket_id is None
    assert to(outbox, "issues/staff_reopened") == ["o-zhao"]   # back to its assignee
    assert to(outbox, "issues/reporter_reopened") == ["o-cadre"]


def test_a_low_rating_reaches_the_supervisors_and_the_handler(world):
    work, outbox, p = world
    number = service.create_ticket(work(), p["reporter"], DRAFT).id
    service.resolve(work(), p["zhao"], number, "已派人修好")
    service.rate(work(), p["reporter"], None, 1)               # the awaiting ticket
    assert sorted(to(outbox, "issues/staff_low_rating")) == ["o-sun", "o-zhao"]
    with pytest.raises(Refusal) as refused:
        service.rate(work(), p["reporter"], number, 5)
    assert refused.value.code == "already_rated"


def test_refusals_push_nothing(world):
    work, outbox, p = world
    number = service.create_ticket(work(), p["reporter"], DRAFT).id
    before = len(outbox.sent)
    for call, code in [(lambda w: service.reply(w, p["zhao"], number, ""), "need_text"),
                       (lambda w: service.transfer(w, p["zhao"], number, "无此人"),
                        "no_such_staff"),
                       (lambda w: service.reopen(w, p["zhao"], number, ""), "not_resolved")]:
        with pytest.raises(Refusal) as refused:
            call(work())
        assert refused.value.code == code
    assert len(outbox.sent) == before


def test_pushes_are_dispatched_only_by_the_unit_that_made_them(world):
    work, outbox, p = world
    unit = work()
    service.create_ticket(unit, p["reporter"], DRAFT)
    assert outbox.dispatched == [] and len(unit.pushed) == 2
    unit.dispatch()
    assert [s.template for s in outbox.dispatched] == ["issues/staff_new", "issues/family_new"]
    assert unit.pushed == []


def test_the_first_active_tickets_are_the_head_of_the_list_with_the_full_count(world):
    """`待办` lists a few tickets of a long backlog: the same first ones, and how many in all."""
    from datetime import timedelta

    from models.issues import Ticket

    work, outbox, p = world
    db = work().db
    db.add_all([Ticket(cadre_id=p["reporter"].cadre_id, reporter_openid="o-cadre",
                       category="utilities", description=f"问题{i}", urgent=i == 3,
                       state=RESOLVED if i == 0 else "open",
                       created_at=NOW - timedelta(hours=i)) for i in range(6)])
    db.flush()
    everything = service.active_tickets(db)
    rows, total = service.first_active_tickets(db, 3)
    assert [t.id for t in rows] == [t.id for t in everything[:3]] and total == 5 == len(everything)
    rows, total = service.first_active_tickets(db, 10)
    assert [t.id for t in rows] == [t.id for t in everything] and total == 5
