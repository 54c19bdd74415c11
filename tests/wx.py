"""The one builder of signed/encrypted WeChat XML for tests; drives the real Flask app."""
from __future__ import annotations

from bot.wxmessage import message_xml, read_reply, sign_request


def post(client, req):
    """POST a SignedRequest to /wechat with a Flask test client."""
    return client.post("/wechat", query_string=req.query, data=req.body.encode(),
                       content_type="text/xml")


class WeChat:
    """Plays WeChat's servers: builds, signs, encrypts, posts, and decodes replies."""

    def __init__(self, app):
        self.app = app
        self.client = app.test_client()
        self.settings = app.extensions["yinling"].settings

    def xml(self, openid: str, msg_type: str = "text", **fields) -> str:
        """Build a message or event."""
        return message_xml(openid, msg_type, **fields)

    def post_xml(self, xml: str, *, aes: bool | None = None, **sign_kw):
        """Sign (and encrypt when the app has a key, unless aes=False) and POST."""
        s = self.settings
        use_aes = bool(s.wechat_aes_key) if aes is None else aes
        req = sign_request(xml, s.wechat_token, aes_key=s.wechat_aes_key if use_aes else "",
                           appid=s.wechat_appid, **sign_kw)
        return post(self.client, req)

    def reply_of(self, response) -> str | None:
        """The reply's Content, None for `success`."""
        assert response.status_code == 200, (response.status_code, response.data[:300])
        s = self.settings
        data = read_reply(response.get_data(as_text=True), s.wechat_token,
                          aes_key=s.wechat_aes_key, appid=s.wechat_appid)
        return None if data is None else data.get("Content")

    def text(self, openid: str, content: str) -> str | None:
        """Send a text message and return the reply text."""
        return self.reply_of(self.post_xml(self.xml(openid, "text", Content=content)))

    def voice(self, openid: str, recognition: str | None, media_id: str = "m1") -> str | None:
        """Send a voice message (with or without speech recognition)."""
        fields = {"MediaId": media_id, "Format": "amr"}
        if recognition is not None:
            fields["Recognition"] = recognition
        return self.reply_of(self.post_xml(self.xml(openid, "voice", **fields)))

    def event(self, openid: str, event: str, key: str = "", **fields) -> str | None:
        """Send an event and return the reply text."""
        xml = self.xml(openid, "event", Event=event, EventKey=key, **fields)
        return self.reply_of(self.post_xml(xml))

    def click(self, openid: str, key: str) -> str | None:
        """Custom-menu click."""
        return self.event(openid, "CLICK", key)

    def pushes(self, openid: str, wait: float = 3.0) -> list[str]:
        """Bodies delivered (sandbox) to openid, waiting up to `wait` s for background
        delivery (and for a late reply's push to be queued at all)."""
        from sqlalchemy import select

        from models import Delivery
        from tests.conftest import wait_for

        def statuses() -> list[tuple[str, str]]:
            with self.app.extensions["yinling"].db.session() as session:
                return session.execute(select(Delivery.status, Delivery.body).where(
                    Delivery.openid == openid).order_by(Delivery.id)).all()

        wait_for(lambda: (rows := statuses()) and
                 all(status not in ("pending", "sending") for status, _ in rows), wait)
        return [body for status, body in statuses() if status in ("sandbox", "sent")]
