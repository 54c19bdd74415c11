"""A local durable spool for messages that arrive while the database cannot take them.

`success` tells WeChat "we have it". When the database is unreachable or too slow to record a
message, the message is written here instead (one file per message, fsync'd, renamed into place)
and handled exactly once when the database is back, in the order it arrived. WeChat's retries of
the same message find its file and are not spooled twice. One spool per host, shared by the web
processes on it; bounded in files and bytes: when it is full, or cannot be written at all, the
caller holds its answer past WeChat's 5 seconds so that WeChat sends the message again.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)
SUFFIX = ".msg"
CLAIMED = ".claimed"


class SpoolFull(OSError):
    """The spool is at its bound (files or bytes): nothing more may be written."""


@dataclass(frozen=True)
class Spooled:
    """One spooled message: its dedupe key, the parsed fields and the raw XML."""

    path: Path
    key: str
    data: dict
    raw: str


def _name_of(key: str) -> str:
    return hashlib.sha1(key.encode("utf-8")).hexdigest()


def user_of(openid: str) -> str:
    """The part of a spool file's name that says whose message it is."""
    return hashlib.sha1(openid.encode("utf-8")).hexdigest()[:16]


class Spool:
    """A directory of spooled messages, oldest first."""

    def __init__(self, folder: Path, max_files: int, max_bytes: int):
        self.folder = Path(folder)
        self.max_files, self.max_bytes = max_files, max_bytes

    def _ready(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)

    def has(self, key: str) -> bool:
        """Whether this message is already spooled (a WeChat retry during the outage)."""
        return self._find(key) is not None

    def _find(self, key: str) -> Path | None:
        """The file holding this message (pending or claimed), if any."""
        name = _name_of(key)
        if not self.folder.is_dir():
            return None
        return next((p for p in self.folder.iterdir()
                     if p.name.split("-", 1)[-1].startswith(name)), None)

    def kept_late(self, key: str) -> bool:
        """Whether this message was kept while it ran late (its sender was answered
        `success`, not the spooled reply)."""
        path = self._find(key)
        try:
            return path is not None and \
                bool(json.loads(path.read_text(encoding="utf-8")).get("late"))
        except (FileNotFoundError, ValueError):
            return False  # replayed and removed meanwhile, or being written

    def write(self, key: str, data: dict, raw: str, *, late: bool = False) -> bool:
        """Keep the message durably (`late`: kept while its handler runs past the budget);
        False when it was there already. Raises OSError (SpoolFull included) when it
        cannot be kept."""
        self._ready()
        if self.has(key):
            return False
        doc = {"key": key, "data": data, "raw": raw}
        if late:
            doc["late"] = True
        body = json.dumps(doc, ensure_ascii=False).encode()
        entries = list(self.folder.iterdir())
        if len(entries) >= self.max_files or \
                sum(_size(p) for p in entries) + len(body) > self.max_bytes:
            raise SpoolFull(f"spool at its bound ({len(entries)} files)")
        user = user_of(str(data.get("FromUserName") or ""))
        final = self.folder / f"{time.time_ns():020d}-{_name_of(key)}-{user}{SUFFIX}"
        temp = final.with_suffix(".tmp")
        with open(temp, "wb") as fh:
            fh.write(body)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(temp, final)
        self._sync_folder()
        return True

    def _sync_folder(self) -> None:
        """Make the rename itself durable."""
        fd = os.open(self.folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def pending(self) -> list[Path]:
        """Spooled messages not yet taken, in the order they arrived."""
        if not self.folder.is_dir():
            return []
        return sorted(p for p in self.folder.iterdir() if p.name.endswith(SUFFIX))

    def users(self) -> set[str]:
        """Whose messages wait in the spool (pending or being replayed), as user_of(openid)."""
        if not self.folder.is_dir():
            return set()
        return {parts[2].split(".", 1)[0] for p in self.folder.iterdir()
                if len(parts := p.name.split("-")) >= 3}

    def claim(self, path: Path) -> Spooled | None:
        """Take one message for handling (an atomic rename: one process gets it)."""
        claimed = path.with_name(path.name + CLAIMED)
        try:
            os.replace(path, claimed)
        except FileNotFoundError:
            return None  # another process took it
        doc = json.loads(claimed.read_text(encoding="utf-8"))
        return Spooled(claimed, doc["key"], doc["data"], doc["raw"])

    def release(self, item: Spooled) -> None:
        """Give a claimed message back (the database went away again)."""
        os.replace(item.path, item.path.with_name(item.path.name[:-len(CLAIMED)]))

    def done(self, item: Spooled) -> None:
        """The message is recorded and handled: forget it."""
        item.path.unlink(missing_ok=True)
        self._sync_folder()

    def reclaim_stale(self, older_than: float) -> int:
        """Claims left by a process that died while replaying go back to the queue."""
        if not self.folder.is_dir():
            return 0
        back = 0
        for p in self.folder.iterdir():
            if not p.name.endswith(CLAIMED):
                continue
            try:
                if time.time() - p.stat().st_mtime > older_than:
                    os.replace(p, p.with_name(p.name[:-len(CLAIMED)]))
                    back += 1
            except FileNotFoundError:
                continue  # finished (or reclaimed) by another process meanwhile
        return back


def _size(path: Path) -> int:
    """A spool file's size; 0 when it is gone already. Other processes of this host rename
    and delete files in the folder all the time (a temporary file becomes a message, a
    replayed one is removed): one vanishing between listing and looking is no error."""
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0
