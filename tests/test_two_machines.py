"""Several machines (issue 9, item 5): two web nodes and two delivery workers, as separate
processes on one PostgreSQL database and one Redis, in front of the fake WeChat API.

Each web node is gunicorn started with deploy/gunicorn.conf.py (two processes, its own spool
folder, as on its own host); each worker is `flask --app bot worker`. Messages, signed and
encrypted as WeChat sends them, go to the two nodes in turn; some go to both at once, as a
WeChat retry that a load balancer hands to the other machine. Every message is handled once and
answered alike by both nodes, a dialog begun on one node goes on on the other, and every push
reaches WeChat exactly once, through whichever worker took it.
"""
from __future__ import annotations

import re
import signal
import subprocess
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
from rq import Worker
from sqlalchemy import func, select
from werkzeug.wrappers import Response

from bot.settings import ROOT
from bot.wxmessage import sign_request
from models import Binding, Delivery, InboundMessage, Staff
from models.broadcasts import Broadcast
from models.groups import BroadcastGroup, GroupMember
from models.people import HelpRequest
from tests.conftest import TEST_REDIS_URL, bound_user, db, oid, wait_for
from tests.fake_wechat import live_settings
from tests.test_delivery_processes import FLASK, env_for
from tests.test_processes import GUNICORN, free_port, wait_until_up
from tests.wx import WeChat, post

# PostgreSQL and a real Redis, or skipped with the reason (the backend fixture says which).
pytestmark = pytest.mark.parametrize("backend", ["postgres"], indirect=True)

TOKEN = "twoMachinesToken2026"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
SECRET_KEY = "one-secret-key-shared-by-every-machine"
NAMES = ["王建国", "李秀英", "张德明", "刘桂兰", "陈志强", "杨淑珍"]
ANSWER = "师傅明天上午上门"
NOTICE = "明天上午九点在老干部活动中心排练，请准时参加。"


class Machine:
    """A web node, posted to over HTTP the way the builder posts to a Flask test client."""

    def __init__(self, port: int):
        self.base = f"http://127.0.0.1:{port}"

    def post(self, path: str, query_string=None, data=None, content_type=None) -> Response:
        """POST on a connection of its own (copies sent at once reach the node apart)."""
        r = requests.post(self.base + path, params=query_string, data=data, timeout=15,
                          headers={"Content-Type": content_type or "text/xml"})
        return Response(r.content, status=r.status_code)


@dataclass
class Cluster:
    """The processes, the builders that post to each web node, and the in-process app that
    reads the shared database."""

    app: object
    folder: Path   # the processes' logs, spools and media
    nodes: list[WeChat] = field(default_factory=list)
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    logs: dict[str, str] = field(default_factory=dict)

    def start(self, name: str, env: dict, command: list[str]) -> None:
        """Start one process, its output in a log file of its own."""
        path = self.folder / f"{name}.log"
        with open(path, "wb") as log:
            self.processes[name] = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log,
                                                    stderr=subprocess.STDOUT)
        self.logs[name] = str(path)

    def log(self, name: str) -> str:
        """What a process wrote so far (gunicorn's access and error lines, the app's logs)."""
        with open(self.logs[name], encoding="utf-8", errors="replace") as fh:
            return fh.read()

    def stop(self) -> dict[str, int]:
        """SIGTERM to everything still running; each exit status."""
        for proc in self.processes.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        codes = {}
        for name, proc in self.processes.items():
            try:
                codes[name] = proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                codes[name] = proc.wait()
        return codes


@pytest.fixture
def cluster(backend, make_app, fake, tmp_path):
    """Two web nodes (A, B) and two workers on this test's PostgreSQL database and Redis db."""
    database, redis_client = backend
    app = make_app(**live_settings(fake), wechat_token=TOKEN, wechat_aes_key=AES_KEY,
                   secret_key=SECRET_KEY)
    # What every machine shares: the database, Redis, the account's secrets, the media folder.
    env = {**env_for(fake, database, TEST_REDIS_URL), "WECHAT_TOKEN": TOKEN,
           "WECHAT_AES_KEY": AES_KEY, "WECHAT_OAUTH_BASE": fake.base,
           "YINLING_SECRET_KEY": SECRET_KEY, "YINLING_MEDIA_DIR": str(tmp_path / "media"),
           "YINLING_WEB_WORKERS": "2", "YINLING_WEB_THREADS": "4"}
    found = Cluster(app, tmp_path)
    try:
        for name in ("a", "b"):
            port = free_port()
            # What differs: where the node listens, and its own spool on its own disk.
            node_env = {**env, "YINLING_BIND": f"127.0.0.1:{port}",
                        "YINLING_SPOOL_DIR": str(tmp_path / f"spool-{name}")}
            found.start(f"web-{name}", node_env,
                        [GUNICORN, "-c", str(ROOT / "deploy" / "gunicorn.conf.py")])
            wx = WeChat(app)
            wx.client = Machine(port)
            found.nodes.append(wx)
        for n in (1, 2):
            found.start(f"worker-{n}", env, [FLASK, "--app", "bot", "worker"])
        for wx in found.nodes:
            wait_until_up(wx.client.base + "/wechat")
        assert wait_for(lambda: Worker.count(connection=redis_client) == 2, 30), \
            "the two workers did not start: " + found.log("worker-1")[-2000:]
        yield found
    finally:
        found.stop()


def at_once(xml: str, nodes: list[WeChat]) -> list[str | None]:
    """One request, byte for byte (as WeChat sends a retry), to every node at the same time;
    each node's reply."""
    s = nodes[0].settings
    req = sign_request(xml, s.wechat_token, aes_key=s.wechat_aes_key, appid=s.wechat_appid)
    with ThreadPoolExecutor(len(nodes)) as pool:
        responses = list(pool.map(lambda wx: post(wx.client, req), nodes))
    return [wx.reply_of(r) for wx, r in zip(nodes, responses, strict=True)]


@dataclass
class Story:
    """The staff member on duty, and six cadres in one group that the first one runs."""

    staff: str
    people: list[str]


def seed(app) -> Story:
    """Six bound cadres in 合唱团 (the first its admin) and 赵敏 on duty."""
    people = [bound_user(app, name, f"1380000{i:04d}") for i, name in enumerate(NAMES)]
    staff = oid("staff")
    with db(app) as s:
        s.add(Staff(name="赵敏", openid=staff, on_duty=True))
        group = BroadcastGroup(name="合唱团")
        s.add(group)
        s.flush()
        for i, openid in enumerate(people):
            cadre_id = s.scalar(select(Binding.cadre_id).where(Binding.openid == openid))
            s.add(GroupMember(group_id=group.id, cadre_id=cadre_id, is_admin=i == 0))
    return Story(staff, people)


def count(app, model, *where) -> int:
    """Rows of `model` in the shared database matching `where`."""
    with db(app) as s:
        return s.scalar(select(func.count()).select_from(model).where(*where))


def shown(message) -> str:
    """The text of a message the fake accepted: a chat message's, or a template's fields."""
    text = (message.payload.get("text") or {}).get("content")
    data = message.payload.get("data") or {}
    return text or " ".join(str(f.get("value", "")) for f in data.values())


def test_two_web_nodes_and_two_workers_handle_once_and_deliver_once(cluster, fake):
    app, (a, b) = cluster.app, cluster.nodes
    story = seed(app)
    people = story.people

    # Everyone asks for a person. Each message reaches both nodes at the same moment, and a
    # little later once more the other node, as WeChat's retry: one answer, handled once.
    for i, person in enumerate(people):
        first, other = (a, b) if i % 2 == 0 else (b, a)
        xml = first.xml(person, "text", Content="人工 家里暖气不热了")
        replies = at_once(xml, [first, other]) + [other.reply_of(other.post_xml(xml))]
        assert len(set(replies)) == 1 and "已通知工作人员" in replies[0], replies
    for person in people:
        assert count(app, InboundMessage, InboundMessage.openid == person) == 1
        assert count(app, HelpRequest, HelpRequest.openid == person) == 1
    with db(app) as s:
        numbers = dict(s.execute(select(HelpRequest.openid, HelpRequest.id)).all())

    # The staff member answers each request through either node; one answer reaches both.
    for i, person in enumerate(people):
        words = f"答复 {numbers[person]} {ANSWER}"
        if i == 0:
            replies = at_once(a.xml(story.staff, "text", Content=words), [a, b])
            assert replies[0] == replies[1], replies
            reply = replies[0]
        else:
            reply = (a if i % 2 else b).text(story.staff, words)
        assert f"已答复第{numbers[person]}号请求" in reply, reply

    # A broadcast dialog that moves between the nodes; its confirmation reaches both at once.
    admin = people[0]
    assert "请发送要群发给“合唱团”" in a.text(admin, "群发")
    assert "请核对要群发的通知" in b.text(admin, NOTICE)
    sent = at_once(a.xml(admin, "text", Content="1"), [b, a])
    assert sent[0] == sent[1] and "将发给“合唱团”的6人" in sent[0], sent
    assert count(app, Broadcast) == 1

    # Every push, once: six alerts to the staff member, an answer and the notice to each.
    expected = len(people) * 3

    def statuses() -> Counter:
        with db(app) as s:
            return Counter(s.scalars(select(Delivery.status)))

    assert wait_for(lambda: statuses() == {"sent": expected}, 30), statuses()
    received = Counter(m.openid for m in fake.messages())
    assert received == {story.staff: len(people), **{p: 2 for p in people}}, received
    for person in people:
        texts = [shown(m) for m in fake.messages(person)]
        assert sum(ANSWER in t for t in texts) == 1 and sum("排练" in t for t in texts) == 1, \
            texts

    # Both workers delivered, each delivery by one of them; the web nodes sent nothing.
    by_worker = {name: [int(n) for n in re.findall(r"delivery (\d+) via \w+: sent",
                                                     cluster.log(name))]
                 for name in ("worker-1", "worker-2")}
    with db(app) as s:
        ids = sorted(s.scalars(select(Delivery.id)))
    assert sorted(by_worker["worker-1"] + by_worker["worker-2"]) == ids, by_worker
    assert all(by_worker.values()), f"one worker delivered everything: {by_worker}"
    web_logs = cluster.log("web-a") + cluster.log("web-b")
    assert not re.search(r"delivery \d+ via", web_logs)
    # Both nodes took messages; no access line carries WeChat's query string.
    for name in ("web-a", "web-b"):
        assert '"POST /wechat HTTP/1.1" 200' in cluster.log(name)
    assert "signature" not in web_logs and "nonce=" not in web_logs

    # Every process stops cleanly on SIGTERM, as systemd stops it.
    assert cluster.stop() == {name: 0 for name in cluster.processes}
