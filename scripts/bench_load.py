"""Load benchmarks of the webhook (issue 9): a callback flood beside chatting users, and growth.

    .venv/bin/python scripts/bench_load.py flood       # 20,000 callbacks at 170/s, 20 users chat
    .venv/bin/python scripts/bench_load.py flood --callbacks 3000 --rate 100 --users 10
    .venv/bin/python scripts/bench_load.py growth      # p50 empty vs 1,000,000 messages
    .venv/bin/python scripts/bench_load.py growth --messages 200000 --tickets 20000

The product is served as in scripts/bench_webhook.py (gunicorn, 2 workers x 4 threads, safe mode,
PostgreSQL database `bench` — its schema is DROPPED and migrated afresh — and Redis db 11), with
the same signed, encrypted messages and the same reply checks.

flood    A broadcast's `TEMPLATESENDJOBFINISH` callbacks come back: --callbacks of them (each for
         a template message the database holds) at --rate a second, open loop over 6
         connections, while --users cadres chat (each sends the realistic mix's next message
         a --think after the last reply). Prints, for the users and for the callbacks, p50, p99,
         the slowest, how many took over 4 s (target: none for the users) and the wrong replies,
         then how many receipts the database stored.
growth   The realistic and the hello mixes (bench_webhook's rounds), first on the fresh
         database, then after loading --messages inbound messages (from 20,000 users, over a
         year) and --tickets tickets; prints p50 and p99 of both and their ratio (target:
         p50 within 1.2x), and EXPLAIN ANALYZE of the hot queries on the loaded database.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scripts import bench_webhook as bw  # noqa: E402

CALLBACK_CONNECTIONS = 6
LATE = 4.0   # seconds: a user's reply later than this counts against the flood target


def parse_args() -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", choices=("flood", "growth"))
    parser.add_argument("--callbacks", type=int, default=20_000)
    parser.add_argument("--rate", type=float, default=170.0, help="callbacks a second")
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--think", type=float, default=1.0, help="seconds between a reply "
                        "and the user's next message")
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=8.0, help="growth: one round")
    parser.add_argument("--rounds", type=int, default=2, help="growth: rounds per mix")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--database-url", default=os.environ.get(
        "BENCH_DATABASE_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/bench"))
    parser.add_argument("--redis-url", default=os.environ.get(
        "BENCH_REDIS_URL", "redis://127.0.0.1:6379/11"))
    args = parser.parse_args()
    args.servers, args.mix = "yinling", "realistic"
    return args


def pct(values: list[float], q: float) -> float:
    """The q-quantile of latencies in seconds, in milliseconds."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def line(title: str, latencies: list[float], wrong: int) -> str:
    """One row of a latency table."""
    late = sum(s > LATE for s in latencies)
    return (f"{title:10} {len(latencies):7d} {pct(latencies, .5):8.1f} {pct(latencies, .99):8.1f} "
            f"{max(latencies, default=0) * 1000:8.1f} {late:8d} {wrong:6d}")


# ---- flood ---------------------------------------------------------------------------------
def callback_items(server: bw.Server, count: int) -> list[bw.Item]:
    """`count` TEMPLATESENDJOBFINISH callbacks, each for a different stored template message."""
    items = []
    for k in range(count):
        cadre, n = k % bw.CADRES, (k // bw.CADRES) % bw.DELIVERIES_PER_CADRE
        msgid = bw.callback_msgid(cadre, n)
        xml = bw.message_xml(bw.cadre_openid(cadre), "event", to="gh_bench", Event=
                             "TEMPLATESENDJOBFINISH", MsgID=msgid, Status="success")
        items.append(bw.Item(_request(server, xml), None, None, msgid))
    return items


def _request(server: bw.Server, xml: str) -> bytes:
    """Sign, encrypt and frame one message as a raw HTTP request."""
    from urllib.parse import urlencode

    req = bw.sign_request(xml, bw.TOKEN, aes_key=bw.AES_KEY, appid=bw.APPID,
                          nonce=f"{bw.RUN}{next(bw._nonces)}")
    body = req.body.encode()
    head = (f"POST /wechat?{urlencode(req.query)} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
            f"Content-Type: text/xml\r\nContent-Length: {len(body)}\r\n\r\n").encode()
    return head + body


def flood(args, server: bw.Server) -> int:
    """Callbacks open loop at args.rate beside args.users chatting; print the figures."""
    items = callback_items(server, args.callbacks)
    done = threading.Event()
    cb_out: list[list] = [[] for _ in range(CALLBACK_CONNECTIONS)]
    user_out: list[list] = [[] for _ in range(args.users)]
    start = time.perf_counter() + 1.0

    def callbacks(k: int) -> None:
        conn = bw.Conn(server.port)
        for j in range(k, len(items), CALLBACK_CONNECTIONS):
            due = start + j / args.rate
            time.sleep(max(0.0, due - time.perf_counter()))
            cb_out[k].append(_send(conn, server, items[j], due))
        conn.close()

    def user(u: int) -> None:
        lane, conn = bw.Lane("realistic", u, args.users), bw.Conn(server.port)
        lane.users = [u]   # one cadre per lane: the mix's steps in order
        time.sleep(max(0.0, start - time.perf_counter()))
        i = 0
        while not done.is_set():
            [item] = lane.build(server.port, i, 1)
            i += 1
            if item.sent is None:
                continue   # the mix's own callbacks: the flood brings enough
            user_out[u].append(_send(conn, server, item, time.perf_counter()))
            time.sleep(args.think)
        conn.close()

    senders = [threading.Thread(target=callbacks, args=(k,)) for k in range(CALLBACK_CONNECTIONS)]
    chatters = [threading.Thread(target=user, args=(u,)) for u in range(args.users)]
    for t in senders + chatters:
        t.start()
    for t in senders:
        t.join()
    took = time.perf_counter() - start
    done.set()
    for t in chatters:
        t.join()
    cbs = [r for out in cb_out for r in out]
    users = [r for out in user_out for r in out]
    print(f"\nflood: {len(cbs)} callbacks in {took:.1f} s ({len(cbs) / took:.0f}/s, asked "
          f"{args.rate:g}/s) beside {args.users} users ({len(users)} messages, think "
          f"{args.think:g} s)")
    print(f"{'who':10} {'n':>7} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'> 4 s':>8} "
          f"{'wrong':>6}")
    print(line("users", [r[0] for r in users], sum(not r[1] for r in users)))
    print(line("callbacks", [r[0] for r in cbs], sum(not r[1] for r in cbs)))
    late = sum(r[0] > LATE for r in users)
    print(f"users' replies later than {LATE:g} s: {late} (target 0: {'met' if not late else 'NOT met'})")
    time.sleep(2.0)   # the last receipts' transactions
    inbound, receipts = bw.product_counts(args.database_url)
    print(f"template receipts stored: {receipts} of {len(set(i.msgid for i in items))} called back")
    return 1 if any(not r[1] for r in users + cbs) else 0


def _send(conn: bw.Conn, server: bw.Server, item: bw.Item, due: float) -> tuple[float, bool]:
    """(seconds from `due` to the reply, whether the reply was right)."""
    try:
        status, body = conn.request(item.raw)
    except (OSError, EOFError):
        conn.close()
        return time.perf_counter() - due, False
    return time.perf_counter() - due, bw.reply_ok(server, item, status, body)


# ---- growth --------------------------------------------------------------------------------
GROW_INBOUND = """
INSERT INTO inbound_message (dedupe_key, openid, msg_type, content, raw, status, reply,
                             reply_mode, understood, received_at, handled_at)
SELECT 'msg:growth' || g, 'growth-user-' || (g % 20000), 'text', '我的党费交了没有',
       '<xml><ToUserName><![CDATA[gh_bench]]></ToUserName><Content><![CDATA[x]]></Content></xml>',
       'done', '您近两个月的党费……', 'inline', '党费',
       now() - make_interval(secs => (:n - g) * 31.5), now() - make_interval(secs => (:n - g) * 31.5)
FROM generate_series(1, :n) AS g
"""
GROW_TICKETS = """
INSERT INTO ticket (cadre_id, reporter_openid, on_behalf, category, description, urgent, state,
                    assign_round, reminded_round, created_at, updated_at, resolved_at)
SELECT (SELECT min(id) FROM cadre) + g % 200, 'growth-user-' || (g % 20000), false, '生活照料',
       '家里暖气不热了', g % 17 = 0, CASE WHEN g % 50 = 0 THEN 'open' ELSE 'resolved' END, 0, 0,
       now() - make_interval(secs => (:n - g) * 315), now() - make_interval(secs => (:n - g) * 315),
       CASE WHEN g % 50 = 0 THEN NULL ELSE now() - make_interval(secs => (:n - g) * 300) END
FROM generate_series(1, :n) AS g
"""


def grow(args) -> None:
    """Load the inbound messages and tickets straight into the database, then ANALYZE."""
    from sqlalchemy import create_engine, text

    engine = create_engine(args.database_url)
    t0 = time.perf_counter()
    with engine.begin() as conn:
        conn.execute(text(GROW_INBOUND), {"n": args.messages})
        conn.execute(text(GROW_TICKETS), {"n": args.tickets})
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("ANALYZE"))
    engine.dispose()
    print(f"\nloaded {args.messages} inbound messages and {args.tickets} tickets in "
          f"{time.perf_counter() - t0:.0f} s", flush=True)


def hot_queries(args) -> list[tuple[str, object]]:
    """The statements a message makes (see scripts/bench_webhook.py's mixes), as SQLAlchemy."""
    from sqlalchemy import select

    from models import Delivery, Follower, InboundMessage
    from models.issues import ACTIVE_STATES, Ticket

    user = bw.cadre_openid(7)
    return [
        ("record a retry (dedupe key)", select(InboundMessage.id).where(
            InboundMessage.dedupe_key == f"msg:growth{args.messages // 2}")),
        ("the user's last texts", select(InboundMessage.content).where(
            InboundMessage.openid == "growth-user-77", InboundMessage.msg_type == "text")
         .order_by(InboundMessage.id.desc()).limit(5)),
        ("follower row", select(Follower).where(Follower.openid == user).with_for_update()),
        ("callback's delivery", select(Delivery.id).where(
            Delivery.wx_msg_id == str(bw.callback_msgid(7, 3)))),
        ("我的问题 (reporter's tickets)", select(Ticket.id).where(
            Ticket.reporter_openid == "growth-user-77").order_by(Ticket.id.desc()).limit(5)),
        ("待办 (open tickets)", select(Ticket.id).where(Ticket.state.in_(ACTIVE_STATES))
         .order_by(Ticket.created_at).limit(20)),
    ]


def explain(args) -> None:
    """EXPLAIN ANALYZE of the hot queries on the loaded database."""
    from sqlalchemy import create_engine, text

    engine = create_engine(args.database_url)
    print("\nquery plans on the loaded database:")
    with engine.connect() as conn:
        for title, query in hot_queries(args):
            sql = str(query.compile(engine, compile_kwargs={"literal_binds": True}))
            plan = conn.execute(text("EXPLAIN (ANALYZE, COSTS OFF) " + sql)).scalars().all()
            print(f"  {title}:")
            for row in plan:
                print(f"    {row}")
        conn.rollback()
    engine.dispose()


def growth(args, server: bw.Server) -> int:
    """Both mixes on the fresh database, then on the grown one; p50 and p99 side by side."""
    before = {mix: _rounds(args, server, mix) for mix in ("hello", "realistic")}
    grow(args)
    after = {mix: _rounds(args, server, mix) for mix in ("hello", "realistic")}
    print(f"\n{'mix':10} {'p50 empty':>10} {'p50 grown':>10} {'ratio':>6} {'p99 empty':>10} "
          f"{'p99 grown':>10} {'req/s empty':>12} {'req/s grown':>12}")
    worst = 0.0
    for mix in before:
        b, a = before[mix], after[mix]
        ratio = a["p50"] / b["p50"] if b["p50"] else float("nan")
        worst = max(worst, ratio)
        print(f"{mix:10} {b['p50']:10.1f} {a['p50']:10.1f} {ratio:6.2f} {b['p99']:10.1f} "
              f"{a['p99']:10.1f} {b['rps']:12.0f} {a['rps']:12.0f}")
    print(f"p50 grown / empty at worst {worst:.2f} (target <= 1.2: "
          f"{'met' if worst <= 1.2 else 'NOT met'})")
    explain(args)
    wrong = sum(r["wrong"] for r in list(before.values()) + list(after.values()))
    return 1 if wrong else 0


def _rounds(args, server: bw.Server, mix: str) -> dict:
    """Medians of args.rounds closed-loop rounds of one mix."""
    lanes = [bw.Lane(mix, k, args.connections) for k in range(args.connections)]
    warm = bw.run_round(server, lanes, 1.0, 0.0, 300.0)
    rounds = [bw.run_round(server, lanes, args.seconds, 0.0, max(warm.rps, 50.0))
              for _ in range(args.rounds)]
    return {"p50": statistics.median(r.pct(.5) for r in rounds),
            "p99": statistics.median(r.pct(.99) for r in rounds),
            "rps": statistics.median(r.rps for r in rounds),
            "wrong": sum(r.wrong for r in rounds) + warm.wrong}


def main() -> int:
    """Prepare the database, start the product, run the chosen benchmark."""
    args = parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench_load_"))
    [server] = bw.make_servers(args, tmp)
    print(f"server log in {tmp}; gunicorn {args.workers} workers x {args.threads} threads",
          flush=True)
    bw.prepare_database(args)
    server.start(args, tmp)
    try:
        return flood(args, server) if args.run == "flood" else growth(args, server)
    finally:
        server.stop()


if __name__ == "__main__":
    sys.exit(main())
