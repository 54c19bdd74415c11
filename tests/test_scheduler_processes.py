"""Two `flask --app bot scheduler` processes, one lock: one fires; kill it, the other takes over."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import redis as redis_lib
from sqlalchemy import create_engine, select

from bot.scheduler import LEADER_KEY
from bot.settings import ROOT
from models.messages import JobRun
from tests.conftest import TEST_REDIS_URL, wait_for

# The real CLI, with a test-only job every second added to the features' jobs.
SCHEDULER = """
import sys, types
import bot
from bot.jobs import JobSpec

module = types.ModuleType("test_tick_jobs")
module.jobs = [JobSpec("test_tick", lambda job: 1, {"trigger": "interval", "seconds": 1})]
found = bot.feature_modules
# Every feature as it is (the phrasings name their commands), but with no jobs of its own.
bot.feature_modules = lambda: [types.SimpleNamespace(**{part: getattr(m, part)
                                                        for part in bot.FEATURE_PARTS
                                                        if hasattr(m, part) and part != "jobs"})
                               for m in found()] + [module]
from flask.cli import main
sys.argv = ["flask", "--app", "bot", "scheduler"]
main()
"""
LOCK_SECONDS = 3

pytestmark = pytest.mark.skipif(not TEST_REDIS_URL, reason="scheduler processes share their "
                                                           "lock through a real Redis: set "
                                                           "TEST_REDIS_URL")


def runs(database: str) -> list[tuple]:
    engine = create_engine(database)
    with engine.connect() as conn:
        rows = conn.execute(select(JobRun.scheduled_for, JobRun.runner, JobRun.status)
                            .where(JobRun.job == "test_tick")
                            .order_by(JobRun.scheduled_for)).all()
    engine.dispose()
    return rows


def start(env) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", SCHEDULER], cwd=ROOT, env=env,
                            stderr=subprocess.DEVNULL)


def pid_of(runner: str) -> int:
    return int(runner.split(":")[1])


def test_one_of_two_scheduler_processes_fires_and_a_dead_leader_is_replaced(database):
    client = redis_lib.Redis.from_url(TEST_REDIS_URL)
    client.flushdb()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DATABASE_URL": database,
           "REDIS_URL": TEST_REDIS_URL, "YINLING_ENV": "test", "QUIET_HOURS": "off",
           "YINLING_SCHEDULER_LOCK": str(LOCK_SECONDS)}
    procs = {p.pid: p for p in (start(env), start(env))}
    try:
        # Both start alike; three runs (two seconds of firing) give the follower time to be
        # up and contend: a second leader would have fired too. Polled: a loaded machine
        # may take longer than any fixed sleep to start them.
        assert wait_for(lambda: len(runs(database)) >= 3, 30, every=0.2), runs(database)
        assert all(proc.poll() is None for proc in procs.values())   # neither died
        before = runs(database)
        leaders = {pid_of(runner) for _, runner, _ in before}
        assert len(before) >= 2 and len(leaders) == 1, before
        [leader] = leaders
        assert leader in procs
        procs[leader].send_signal(signal.SIGKILL)   # no release: the lock must lapse
        procs.pop(leader).wait(timeout=10)
        killed_at = time.monotonic()
        [survivor] = procs
        assert wait_for(lambda: any(pid_of(r) == survivor for _, r, _ in runs(database)),
                        60, every=0.2), "no takeover within a minute"
        takeover = time.monotonic() - killed_at
        print(f"leader {leader} killed; {survivor} took over after {takeover:.1f}s")
        assert takeover < LOCK_SECONDS + 3
        times = [t for t, _, _ in runs(database)]
        assert len(times) == len(set(times))    # no fire time ran twice
        procs[survivor].send_signal(signal.SIGTERM)
        assert procs.pop(survivor).wait(timeout=15) == 0
        assert client.get(LEADER_KEY) is None   # a clean stop hands the lock over at once
    finally:
        for proc in procs.values():
            proc.kill()
            proc.wait(timeout=10)
        client.flushdb()
