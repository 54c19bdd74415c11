"""The bare Flask + wechatpy echo that scripts/bench_webhook.py measures the product against.

    .venv/bin/gunicorn --workers 2 --threads 4 "scripts.echo_flask:create()"

Safe mode only: checks the signature, decrypts with wechatpy, answers a text message with its own
content as an encrypted text reply, and `success` to anything else. WECHAT_TOKEN,
WECHAT_AES_KEY and WECHAT_APPID come from the environment. No database, no session.
"""
from __future__ import annotations

import os

from flask import Flask, Response, request
from wechatpy import parse_message
from wechatpy.crypto import WeChatCrypto
from wechatpy.exceptions import InvalidSignatureException
from wechatpy.replies import TextReply
from wechatpy.utils import check_signature


def create() -> Flask:
    """The echo app, configured from the environment."""
    token = os.environ["WECHAT_TOKEN"]
    crypto = WeChatCrypto(token, os.environ["WECHAT_AES_KEY"], os.environ["WECHAT_APPID"])
    app = Flask(__name__)

    @app.route("/wechat", methods=["GET", "POST"])
    def wechat():
        a = request.args
        timestamp, nonce = a.get("timestamp", ""), a.get("nonce", "")
        try:
            check_signature(token, a.get("signature", ""), timestamp, nonce)
            if request.method == "GET":
                return a.get("echostr", "")
            xml = crypto.decrypt_message(request.get_data(), a.get("msg_signature", ""),
                                         timestamp, nonce)
        except InvalidSignatureException:
            return Response("forbidden", 403)
        message = parse_message(xml)
        if message.type != "text":
            return Response("success", mimetype="text/plain")
        reply = TextReply(content=message.content, message=message).render()
        return Response(crypto.encrypt_message(reply, nonce, timestamp),
                        mimetype="application/xml")

    return app
