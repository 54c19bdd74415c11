"""`flask --app bot chat`: a terminal WeChat user talking to the running webhook over HTTP."""
from __future__ import annotations

import threading
import time

import click
import requests

from bot.webhook import outbox_signature
from bot.render import Renderer
from bot.wxmessage import message_xml, read_reply, sign_request

QUIT = {"退出程序", "/quit", "/q"}
WAITING_SHOWN = 3     # pushes already waiting when the simulator starts, shown first
POLL_SECONDS = 2.0    # how often pushes are looked for while the user types


class Pushes:
    """Prints pushes to this user as they arrive, from a background thread."""

    def __init__(self, http, settings, url: str, openid: str):
        self.args = (http, settings, url, openid)
        self.last, self.lock = 0, threading.Lock()
        self.stop = threading.Event()

    def show_waiting(self) -> None:
        """The last few pushes already there (a reminder sent while nobody was chatting)."""
        try:
            messages = _outbox(*self.args, 0)
        except requests.RequestException:
            return
        for m in messages[-WAITING_SHOWN:]:
            click.echo(f"[推送] {m['body']}")
        self.last = messages[-1]["id"] if messages else 0

    def poll(self) -> None:
        """Print anything new (safe to call from both threads)."""
        with self.lock:
            self.last = _show_pushes(*self.args, self.last)

    def start(self) -> None:
        """Keep polling until stopped."""
        def loop():
            while not self.stop.wait(POLL_SECONDS):
                self.poll()
        threading.Thread(target=loop, daemon=True).start()


def run_chat(settings, *, openid: str, name: str, url: str) -> None:
    """Read lines, send each as a text message, print the reply and pushes as they come."""
    http = requests.Session()
    render = Renderer()
    click.echo(render("core/simulator_intro", name=name, openid=openid, url=url))
    pushes = Pushes(http, settings, url, openid)
    pushes.show_waiting()
    pushes.start()
    try:
        _converse(http, settings, render, url, openid, pushes)
    finally:
        pushes.stop.set()


def _converse(http, settings, render, url: str, openid: str, pushes: Pushes) -> None:
    while True:
        try:
            line = input("我> ").strip()
        except (EOFError, KeyboardInterrupt):
            click.echo()
            return
        if not line:
            continue
        if line in QUIT:
            return
        msg_type, fields = _as_message(line)
        try:
            reply = send(http, settings, url, openid, msg_type, **fields)
        except requests.RequestException as exc:
            click.echo(render("core/simulator_no_server", url=url, error=exc))
            continue
        if reply:
            click.echo(f"银龄通> {reply}")
        time.sleep(0.3)
        pushes.poll()


def _as_message(line: str) -> tuple[str, dict]:
    """`[语音]…` → voice with Recognition, `[关注]` → subscribe, `[点击]KEY` → CLICK."""
    if line.startswith("[语音]"):
        return "voice", {"MediaId": "sim-media", "Format": "amr", "Recognition": line[4:]}
    if line == "[关注]":
        return "event", {"Event": "subscribe", "EventKey": ""}
    if line.startswith("[点击]"):
        return "event", {"Event": "CLICK", "EventKey": line[4:]}
    if line.startswith("[扫码]"):  # a QR code with this scene, as `roster qrcodes` prints
        return "event", {"Event": "SCAN", "EventKey": line[4:], "Ticket": "sim-ticket"}
    return "text", {"Content": line}


def send(http, settings, url: str, openid: str, msg_type: str, **fields) -> str | None:
    """POST one signed (and in safe mode encrypted) message; return the reply text."""
    xml = message_xml(openid, msg_type, to="gh_yinling", **fields)
    req = sign_request(xml, settings.wechat_token, aes_key=settings.wechat_aes_key,
                       appid=settings.wechat_appid)
    resp = http.post(url, params=req.query, data=req.body.encode("utf-8"), timeout=10,
                     headers={"Content-Type": "text/xml"})
    if resp.status_code != 200:
        return f"[HTTP {resp.status_code}] {resp.text[:200]}"
    data = read_reply(resp.text, settings.wechat_token, aes_key=settings.wechat_aes_key,
                      appid=settings.wechat_appid)
    return None if data is None else data.get("Content")


def _outbox(http, settings, url: str, openid: str, after: int) -> list[dict]:
    ts, nonce = str(int(time.time())), str(int(time.time() * 1000))
    params = {"openid": openid, "after": after, "timestamp": ts, "nonce": nonce,
              "signature": outbox_signature(settings.wechat_token, ts, nonce, openid)}
    resp = http.get(url.rstrip("/") + "/sandbox/outbox", params=params, timeout=10)
    return resp.json()["messages"] if resp.status_code == 200 else []


def _show_pushes(http, settings, url: str, openid: str, after: int) -> int:
    """Print messages pushed to this user since `after`; return the newest id."""
    try:
        messages = _outbox(http, settings, url, openid, after)
    except requests.RequestException:
        return after
    for m in messages:
        click.echo(f"[推送] {m['body']}")
        after = m["id"]
    return after
