"""The scheduler: job registry, triggers in YINLING_TZ, leader lock, catch-up, `jobs` commands."""
from __future__ import annotations

import types
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

import bot
from bot.jobs import JobSpec
from bot.scheduler import Scheduler, job_registry, last_fire_time, make_trigger
from models import Delivery
from models.messages import JobRun
from tests.conftest import wait_for

TZ = ZoneInfo("Asia/Shanghai")
calls: list[datetime] = []


def morning_job(job):
    """Test-only job: note when it ran and push one message keyed by the day."""
    calls.append(job.now)
    job.push("o-sched-1", "core/raw", campaign=f"test-morning:{job.now:%Y-%m-%d}",
             text="早上好")
    return 1


def broken_job(job):
    """Test-only job that fails."""
    raise RuntimeError("boom")


MORNING = JobSpec("test_morning", morning_job, {"trigger": "cron", "hour": 9, "minute": 30},
                  "test-only: 09:30 every day")
BROKEN = JobSpec("test_broken", broken_job, {"trigger": "cron", "hour": 8})
EVERY_SECOND = JobSpec("test_tick", lambda job: 1, {"trigger": "interval", "seconds": 1})


@pytest.fixture
def with_jobs(monkeypatch):
    """Feature discovery also finds a test-only module with jobs."""
    module = types.ModuleType("test_scheduler_jobs")
    module.jobs = [MORNING, BROKEN]
    found = bot.feature_modules
    monkeypatch.setattr(bot, "feature_modules", lambda: [*found(), module])
    calls.clear()
    return module


@pytest.fixture
def sched_app(make_app):
    """An app with a short leader lock (tests wait for it to lapse)."""
    return make_app(quiet_hours="off", scheduler_lock_seconds=0.6)


def make_scheduler(app, at: str | None = None) -> Scheduler:
    """A scheduler with only the test jobs (features' own jobs are not under test here)."""
    return Scheduler(app, specs={"test_morning": MORNING, "test_broken": BROKEN},
                     clock=clock(at) if at else None)


def clock(text: str):
    """A fixed local clock."""
    return lambda: datetime.fromisoformat(text).replace(tzinfo=TZ)


def job_runs(app, job=None) -> list[JobRun]:
    with app.extensions["yinling"].db.session() as session:
        query = select(JobRun).order_by(JobRun.scheduled_for, JobRun.id)
        if job:
            query = query.where(JobRun.job == job)
        return list(session.scalars(query))


# ---- registry and triggers ----------------------------------------------------------------
def test_registry_collects_every_feature_modules_jobs(with_jobs):
    specs = job_registry()
    assert specs["test_morning"] is MORNING and "test_broken" in specs


def test_a_job_name_defined_twice_is_refused(with_jobs):
    with_jobs.jobs.append(MORNING)
    with pytest.raises(ValueError, match="test_morning"):
        job_registry()


def test_cron_runs_in_yinling_tz():
    trigger = make_trigger(MORNING, TZ)
    utc_now = datetime(2026, 10, 29, 0, 0, tzinfo=ZoneInfo("UTC"))   # 08:00 in Shanghai
    assert trigger.get_next_fire_time(None, utc_now) == datetime(2026, 10, 29, 9, 30, tzinfo=TZ)


def test_interval_fire_times_are_the_same_in_every_process():
    spec = JobSpec("sla", lambda job: 0, {"trigger": "interval", "minutes": 5})
    first, second = make_trigger(spec, TZ), make_trigger(spec, TZ)
    now = datetime(2026, 10, 29, 10, 7, 12, tzinfo=TZ)
    expected = datetime(2026, 10, 29, 10, 5, tzinfo=TZ)
    assert last_fire_time(first, now, now - timedelta(days=1)) == expected
    assert last_fire_time(second, now, now - timedelta(days=1)) == expected


def test_last_fire_time_looks_back_only_as_far_as_asked():
    trigger = make_trigger(MORNING, TZ)
    now = datetime(2026, 10, 29, 11, 0, tzinfo=TZ)
    midnight = now.replace(hour=0, minute=0)
    assert last_fire_time(trigger, now, midnight) == now.replace(hour=9, minute=30)
    early = now.replace(hour=8)
    assert last_fire_time(trigger, early, midnight) is None
    assert last_fire_time(trigger, early, early - timedelta(days=1)) == \
        datetime(2026, 10, 28, 9, 30, tzinfo=TZ)


# ---- `flask --app bot jobs …` -------------------------------------------------------------
def test_jobs_list_shows_each_job_with_its_next_run(with_jobs, sched_app):
    result = sched_app.test_cli_runner().invoke(args=["jobs", "list"])
    assert result.exit_code == 0, result.output
    line = next(ln for ln in result.output.splitlines() if ln.startswith("test_morning"))
    assert "next 20" in line and "09:30" in line and "test-only: 09:30 every day" in line


def test_jobs_run_runs_as_if_at_the_given_local_time(with_jobs, sched_app):
    runner = sched_app.test_cli_runner()
    result = runner.invoke(args=["jobs", "run", "test_morning", "--now", "2026-10-29T09:00"])
    assert result.exit_code == 0, result.output
    assert result.output.strip().endswith("test_morning: 1")
    assert calls == [datetime(2026, 10, 29, 9, 0, tzinfo=TZ)]
    runner.invoke(args=["jobs", "run", "test_morning", "--now", "2026-10-29T01:00:00+00:00"])
    assert calls[-1] == datetime(2026, 10, 29, 9, 0, tzinfo=TZ)   # converted to YINLING_TZ
    with sched_app.extensions["yinling"].db.session() as session:
        rows = session.scalars(select(Delivery).where(Delivery.openid == "o-sched-1")).all()
    assert [(d.campaign, d.status) for d in rows] == [("test-morning:2026-10-29", "sandbox")]


def test_jobs_run_refuses_unknown_jobs_and_bad_times(with_jobs, sched_app):
    runner = sched_app.test_cli_runner()
    unknown = runner.invoke(args=["jobs", "run", "no_such_job"])
    assert unknown.exit_code != 0 and "unknown job" in unknown.output
    assert "test_morning" in unknown.output
    bad = runner.invoke(args=["jobs", "run", "test_morning", "--now", "tomorrow"])
    assert bad.exit_code != 0 and "ISO" in bad.output


# ---- catching up --------------------------------------------------------------------------
def test_a_job_missed_earlier_today_runs_once_when_the_scheduler_returns(with_jobs, sched_app):
    scheduler = make_scheduler(sched_app, "2026-10-29T11:00")
    assert scheduler.tick()                             # a new leader catches up first
    assert scheduler.catch_up() == []                   # recorded: never twice
    [run] = job_runs(sched_app, "test_morning")
    assert (run.status, run.count) == ("done", 1)
    assert run.scheduled_for == datetime(2026, 10, 29, 9, 30, tzinfo=TZ)
    assert calls == [datetime(2026, 10, 29, 11, 0, tzinfo=TZ)]


def test_a_job_missed_yesterday_is_not_run_today(with_jobs, sched_app):
    scheduler = make_scheduler(sched_app, "2026-10-30T07:00")
    assert scheduler.catch_up() == []
    assert calls == []


def test_a_run_whose_leader_died_is_run_again_by_the_next_leader(with_jobs, sched_app):
    due = datetime(2026, 10, 29, 9, 30, tzinfo=TZ)
    with sched_app.extensions["yinling"].db.session() as session:
        session.add(JobRun(job="test_morning", scheduled_for=due, runner="dead:1:x"))
    scheduler = make_scheduler(sched_app, "2026-10-29T09:31")
    assert scheduler.catch_up() == ["test_morning"]
    [run] = job_runs(sched_app, "test_morning")
    assert (run.status, run.runner) == ("done", scheduler.owner)


def test_a_failing_job_is_recorded_and_does_not_stop_the_others(with_jobs, sched_app):
    scheduler = make_scheduler(sched_app, "2026-10-29T11:00")
    scheduler.catch_up()
    [broken] = job_runs(sched_app, "test_broken")
    assert broken.status == "failed" and "RuntimeError: boom" in broken.error
    assert job_runs(sched_app, "test_morning")[0].status == "done"


# ---- one leader ---------------------------------------------------------------------------
def test_only_the_leader_fires_and_each_fire_time_runs_once(with_jobs, sched_app):
    at = "2026-10-29T09:30:00.200"
    first, second = make_scheduler(sched_app, at), make_scheduler(sched_app, at)
    assert first.leader.hold() and not second.leader.hold()
    assert second.fire("test_morning") is None
    assert first.fire("test_morning") == 1
    assert first.fire("test_morning") is None           # the same fire time again
    assert len(calls) == 1 and job_runs(sched_app, "test_morning")[0].runner == first.owner


def test_a_dead_leader_is_replaced_when_its_lock_lapses(with_jobs, sched_app):
    at = "2026-10-29T07:00"   # before every job: catching up does nothing
    first, second = make_scheduler(sched_app, at), make_scheduler(sched_app, at)
    assert first.tick() and not second.tick()
    assert first.tick()              # renewing keeps it
    # The leader stops renewing (it died): the second takes over once the 0.6 s lock lapses.
    assert wait_for(second.tick, 3)
    assert not first.tick()          # back from the dead, it is a follower now
    second.leader.release()


def test_two_running_schedulers_fire_each_second_once_and_fail_over(make_app):
    app = make_app(quiet_hours="off", scheduler_lock_seconds=1.5)
    first, second = (Scheduler(app, specs={"test_tick": EVERY_SECOND}) for _ in range(2))
    first.start()
    assert wait_for(lambda: first.is_leader, 3, every=0.01)   # the first to start leads
    second.start()
    try:
        wait_for(lambda: len(job_runs(app, "test_tick")) >= 2, 5)   # both running meanwhile
        before = job_runs(app, "test_tick")
        assert len(before) >= 2 and {r.runner for r in before} == {first.owner}
        first._stop.set()               # the leader freezes: no renewals, no firing
        first.aps.shutdown(wait=False)
        wait_for(lambda: any(r.runner == second.owner for r in job_runs(app, "test_tick")), 5,
                 every=0.1)
        after = job_runs(app, "test_tick")
        assert any(r.runner == second.owner for r in after)
        times = [r.scheduled_for for r in after]
        assert len(times) == len(set(times))   # no fire time ran twice
    finally:
        second.shutdown()
        first.shutdown()
