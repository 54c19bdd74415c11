"""Delivery benchmark: N deliveries to the fake WeChat API answering after a fixed latency.

    python scripts/bench_delivery.py                       # thread mode (no Redis), SQLite
    python scripts/bench_delivery.py --redis-url redis://127.0.0.1:6379/5 \\
        --database-url postgresql+psycopg2://postgres@127.0.0.1:5432/bench

With --redis-url the deliveries go through RQ to `flask --app bot worker` processes (as in
production) and the peak RSS is the workers'; without it the benchmark process delivers on its
own thread pool (as the web process does) and the peak RSS is its own. Half the recipients have
an open chat window (customer-service messages), half get the notice template.

The database's application tables are DROPPED and recreated: point it at a scratch database.
Prints seconds, deliveries/s, peak worker RSS and the ratio to the ideal N x latency / in-flight.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, func, insert, select  # noqa: E402

import models  # noqa: E402
from models import Delivery, Follower, utcnow  # noqa: E402


def parse_args() -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=16, help="deliveries in flight")
    parser.add_argument("--latency", type=float, default=0.05, help="fake API answer time (s)")
    parser.add_argument("--workers", type=int, default=1, help="worker processes (RQ mode)")
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", ""))
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", ""))
    return parser.parse_args()


def start_fake(latency: float) -> tuple[subprocess.Popen, str]:
    """The fake WeChat API in its own process (so it does not share our CPU time)."""
    proc = subprocess.Popen([sys.executable, "-m", "tests.fake_wechat", "--latency",
                             str(latency)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline().split()
    if not line or line[0] != "READY":
        proc.kill()
        raise SystemExit("the fake WeChat API did not start")
    return proc, line[1]


def app_env(args, base: str, db_url: str) -> dict:
    """The environment a worker (and this process's app) runs with."""
    return {"DATABASE_URL": db_url, "REDIS_URL": args.redis_url, "WECHAT_API_BASE": base,
            "WECHAT_APPID": "wxfakeappid", "WECHAT_SECRET": "fake-secret",
            "WECHAT_TEMPLATE_NOTICE": "TPL-NOTICE", "QUIET_HOURS": "off",
            "YINLING_ENV": "test",
            "YINLING_SEND_RATE": os.environ.get("YINLING_SEND_RATE", "0"),  # the pipeline, unpaced
            "YINLING_DELIVERY_CONCURRENCY": str(args.concurrency // max(args.workers, 1))}


def prepare(db_url: str, count: int) -> None:
    """Fresh tables; `count` pending deliveries, half of them to users with an open window."""
    engine = create_engine(db_url)
    models.Base.metadata.drop_all(engine)
    models.Base.metadata.create_all(engine)
    now = utcnow()
    lease = now + timedelta(minutes=30)   # only the hand-off below may deliver them
    with engine.begin() as conn:
        conn.execute(insert(Follower), [
            {"openid": f"bench-{i:05d}", "subscribed": True, "last_inbound_at": now,
             "last_inbound_kind": "text", "cs_sent_since_inbound": 0}
            for i in range(0, count, 2)])
        conn.execute(insert(Delivery), [
            {"campaign": "bench", "openid": f"bench-{i:05d}", "template": "core/raw",
             "body": f"银龄通性能测试消息 {i}", "kind": "bulk", "lease_until": lease}
            for i in range(count)])
    engine.dispose()


def start_workers(args, env: dict) -> list[subprocess.Popen]:
    """`flask --app bot worker` processes, returned once all are registered with RQ."""
    import redis
    from rq import Worker

    from bot.worker import QUEUE_NAME

    conn = redis.Redis.from_url(args.redis_url)
    conn.delete(f"rq:queue:{QUEUE_NAME}")   # jobs left by an interrupted run
    flask = str(Path(sys.executable).with_name("flask"))
    log = open(Path(tempfile.gettempdir()) / "bench_delivery_worker.log", "ab")
    procs = [subprocess.Popen([flask, "--app", "bot", "worker"], cwd=ROOT, stderr=log,
                              env={**os.environ, **env}) for _ in range(args.workers)]
    print(f"worker log        {log.name}")
    deadline = time.monotonic() + 60
    while len(Worker.all(connection=conn)) < args.workers:
        if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
            raise SystemExit("workers did not start")
        time.sleep(0.1)
    return procs


def peak_rss_mb(pid: int | str = "self") -> float:
    """Peak resident set size (VmHWM) of a process, in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def wait_done(engine, timeout: float) -> None:
    """Until no bench delivery is pending or sending."""
    deadline = time.monotonic() + timeout
    query = select(func.count()).select_from(Delivery).where(
        Delivery.status.in_(("pending", "sending")))
    while time.monotonic() < deadline:
        with engine.connect() as conn:
            if conn.scalar(query) == 0:
                return
        time.sleep(0.1)
    raise SystemExit("deliveries did not finish in time")


def main() -> int:
    """Run the benchmark, print its figures; exit status 1 if a delivery went astray."""
    args = parse_args()
    db_url = args.database_url or f"sqlite:///{tempfile.mkdtemp()}/bench.db"
    fake, base = start_fake(args.latency)
    env = app_env(args, base, db_url)
    workers: list[subprocess.Popen] = []
    try:
        prepare(db_url, args.count)
        os.environ.update(env)
        from bot import create_app

        yl = create_app().extensions["yinling"]
        if args.redis_url:
            workers = start_workers(args, env)
        seconds, engine = measure(args, yl, db_url)
        rss = max(peak_rss_mb(p.pid) for p in workers) if workers else peak_rss_mb()
        ok = report(args, engine, base, seconds, rss)
        yl.dispatcher.shutdown()
    finally:
        for proc in workers:
            proc.terminate()
            proc.wait(timeout=30)
        fake.kill()
    return 0 if ok else 1


def measure(args, yl, db_url: str):
    """Hand every delivery to the dispatcher and time until none is left pending."""
    with yl.db.session() as session:
        ids = list(session.scalars(select(Delivery.id).order_by(Delivery.id)))
    engine = create_engine(db_url)
    started = time.perf_counter()
    yl.dispatcher.enqueue(ids)
    wait_done(engine, timeout=args.count * args.latency * 4 + 60)
    return time.perf_counter() - started, engine


def report(args, engine, base: str, seconds: float, rss: float) -> bool:
    """Print the figures; True when every delivery reached the API exactly once."""
    import json
    import urllib.request

    with urllib.request.urlopen(base + "_fake/stats", timeout=5) as resp:
        stats = json.load(resp)
    with engine.connect() as conn:
        sent = conn.scalar(select(func.count()).select_from(Delivery)
                           .where(Delivery.status == "sent"))
    ideal = args.count * args.latency / args.concurrency
    mode = f"RQ, {args.workers} worker process(es)" if args.redis_url else "thread pool"
    print(f"deliveries        {args.count} ({mode}, {args.concurrency} in flight, "
          f"{engine.dialect.name})")
    print(f"seconds           {seconds:.2f}")
    print(f"deliveries/s      {args.count / seconds:.1f}")
    print(f"peak worker RSS   {rss:.1f} MB")
    print(f"ideal seconds     {ideal:.2f}")
    print(f"ratio to ideal    {seconds / ideal:.3f}")
    print(f"API received      {stats['sent']} messages for {stats['openids']} users "
          f"({stats['by_api']}), peak {stats['peak_inflight']} in flight, "
          f"{stats['connections']} connections; database: {sent} sent")
    ratio = seconds / ideal
    met = ratio <= 1.3 and rss < 200
    print(f"target            ratio <= 1.3 and RSS < 200 MB: {'met' if met else 'NOT met'}")
    return stats["sent"] == stats["openids"] == sent == args.count


if __name__ == "__main__":
    sys.exit(main())
