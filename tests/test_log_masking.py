"""Every name the process has seen is masked in every log line, whoever logs it (issue 12, item 8)."""
from __future__ import annotations

import logging
import uuid

from sqlalchemy import insert, select, text
from sqlalchemy.exc import DBAPIError

from bot.text import mask_name
from models import Cadre, Staff
from tests.conftest import db

log = logging.getLogger("handlers.anywhere")


def fresh_name(length: int = 3) -> str:
    """A CJK name no other test uses (so only this test can have made it known)."""
    number = uuid.uuid4().int
    return "".join(chr(0x4E00 + (number >> (15 * k)) % 20000) for k in range(length))


def insert_row(app, model, **values) -> None:
    """Write a row with plain SQL: the ORM never sees its name until something loads it."""
    with db(app) as s:
        s.execute(insert(model.__table__).values(**values))


def test_a_name_imported_from_a_roster_is_masked_in_any_log_line(app, tmp_path, caplog):
    name = fresh_name()
    roster = tmp_path / "roster.csv"
    roster.write_text(f"姓名,手机号\n{name},13900004321\n", encoding="utf-8")
    result = app.test_cli_runner().invoke(args=["roster", "import", str(roster)])
    assert result.exit_code == 0, result.output
    caplog.set_level(logging.INFO)
    log.info("%s", name)
    logging.getLogger("bot.elsewhere").warning(f"visited {name} at home")
    assert name not in caplog.text
    assert caplog.text.count(mask_name(name)) == 2
    assert f"visited {mask_name(name)} at home" in caplog.text


def test_a_name_loaded_while_binding_through_the_webhook_is_masked(app, wx, openid, caplog):
    name = fresh_name(2)
    insert_row(app, Cadre, name=name, phone="13900002468")
    caplog.set_level(logging.DEBUG)
    assert "绑定成功" in wx.text(openid, f"绑定 {name} 2468")
    logging.getLogger("handlers.people.chat").info("[%s] is %s", openid, name)
    assert name not in caplog.text and f"is {mask_name(name)}" in caplog.text


def test_exception_text_carrying_a_staff_name_is_masked(app, caplog):
    name = fresh_name(4)
    insert_row(app, Staff, name=name, role="staff")
    with db(app) as s:
        assert s.scalars(select(Staff)).all()  # the row is loaded: its name is now known
    caplog.set_level(logging.INFO)
    try:
        raise LookupError(f"no ticket assigned to {name}")
    except LookupError as exc:
        log.exception("lookup failed")
        log.warning("lookup failed: %s", exc)
    assert name not in caplog.text
    assert caplog.text.count(f"assigned to {mask_name(name)}") == 2


def test_a_sql_error_carrying_a_name_is_masked(app, caplog):
    name = fresh_name()
    with db(app) as s:
        s.add(Cadre(name=name, phone="13900001357"))
    caplog.set_level(logging.INFO)
    with db(app) as s:
        try:  # a statement with the name written into it, as a careless query might be
            s.execute(text(f"SELECT no_such_column FROM cadre WHERE name = '{name}'"))
        except DBAPIError:
            s.rollback()
            log.exception("query failed")
    assert "no_such_column" in caplog.text
    assert name not in caplog.text and f"name = '{mask_name(name)}'" in caplog.text


def test_a_long_invited_name_is_masked_whole(app, caplog):
    name = f"{fresh_name(3)}·{fresh_name(4)}"  # a transliterated name, longer than four
    result = app.test_cli_runner().invoke(args=["staff", "invite", name])
    assert result.exit_code == 0, result.output
    caplog.set_level(logging.INFO)
    log.info("welcome, %s同志", name)
    assert name not in caplog.text
    assert f"welcome, {mask_name(name)}同志" in caplog.text


def test_only_names_seen_are_masked_and_one_character_is_no_name(app, caplog):
    seen, unseen = fresh_name(), fresh_name()
    with db(app) as s:
        cadre = Cadre(name="王", phone="13900009753")  # one character: never a name
        s.add(cadre)
        s.flush()
        cadre.name = seen  # renamed: the new name is known from here on
    caplog.set_level(logging.INFO)
    log.info("%s asked about 王, %s and 王%s", seen, unseen, unseen)
    message = [r.getMessage() for r in caplog.records if r.name == log.name][-1]
    assert message == f"{mask_name(seen)} asked about 王, {unseen} and 王{unseen}"
