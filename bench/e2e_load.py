"""Load and measurement for bench/e2e.py: SMTP clients (burst or paced), a commit poller, peak RSS from /proc."""

from __future__ import annotations

import asyncio
import os
import queue
import smtplib
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

PER_SESSION = 40  # the listener caps the commands of one session: a new session every 40 mails


@dataclass
class Sent:
    """What the clients saw: each accepted report's id and the wall-clock time of its `250`, and the refusals."""

    accepted: dict[str, float] = field(default_factory=dict)
    refusals: int = 0
    started: float = 0.0
    finished: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)


def send(
    port: int,
    mails: Sequence[bytes],
    sender: str,
    *,
    clients: int = 8,
    rate: float | None = None,
    retries: int = 3,
    sent: Sent | None = None,
) -> Sent:
    """Deliver `mails` from `clients` concurrent SMTP sessions; `rate` paces them (mail k at start + k/rate).

    A refused mail (any reply but 250, or a dropped session) is counted and sent again, up to `retries` times.
    """
    out = sent or Sent()
    work: queue.Queue[tuple[int, bytes, int]] = queue.Queue()
    for k, raw in enumerate(mails):
        work.put((k, raw, 0))
    out.started = time.time()
    start = time.monotonic()

    def client() -> None:
        session: smtplib.SMTP | None = None
        used = 0
        while True:
            try:
                k, raw, tries = work.get_nowait()
            except queue.Empty:
                break
            if rate:
                delay = start + k / rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            try:
                if session is None or used >= PER_SESSION:
                    _quit(session)
                    session, used = smtplib.SMTP("127.0.0.1", port, timeout=60), 0
                    session.ehlo("reporter.example.org")
                used += 1
                code, reply = _transaction(session, sender, raw)
            except (OSError, smtplib.SMTPException):
                _quit(session)
                session, code, reply = None, 0, b""
            if code == 250:
                with out.lock:
                    out.accepted[reply.decode().rsplit(" ", 1)[1]] = time.time()
                continue
            with out.lock:
                out.refusals += 1
            if tries < retries:
                time.sleep(0.5)
                work.put((k, raw, tries + 1))
        _quit(session)

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out.finished = time.time()
    return out


def _transaction(s: smtplib.SMTP, sender: str, raw: bytes) -> tuple[int, bytes]:
    code, reply = s.mail(sender)
    if code != 250:
        s.rset()
        return code, reply
    code, reply = s.rcpt("abuse@localhost")
    if code != 250:
        s.rset()
        return code, reply
    return s.data(raw)


def _quit(session: smtplib.SMTP | None) -> None:
    if session is not None:
        try:
            session.quit()
        except (OSError, smtplib.SMTPException):
            session.close()


class Poller:
    """Polls the desk every `interval` seconds: when each report's summary row (written in the transaction of its
    decision) was first seen committed, and when the Maildir outbox last grew. A commit is seen at most
    `interval` + one query after it happened."""

    def __init__(self, database_url: str, sqlite_path: Path, maildir: Path, interval: float = 0.05) -> None:
        self.database_url = database_url
        self.sqlite_path = sqlite_path
        self.maildir = maildir
        self.interval = interval
        self.committed: dict[str, float] = {}
        self.mails = 0
        self.mail_times: list[float] = []  # wall-clock time of each growth of the outbox, per mail
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Poller:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        if self.database_url.startswith("postgresql"):
            asyncio.run(self._pg())
        else:
            self._sqlite()

    def _sqlite(self) -> None:
        while not self.sqlite_path.exists() and not self._stop.wait(self.interval):
            pass
        db = sqlite3.connect(self.sqlite_path, timeout=30)
        last = 0
        try:
            while not self._stop.is_set():
                rows = db.execute("SELECT rowid, report_id FROM report_summaries WHERE rowid > ?", (last,)).fetchall()
                self._seen([r[1] for r in rows])
                last = max([last, *(r[0] for r in rows)])
                self._stop.wait(self.interval)
        finally:
            db.close()

    async def _pg(self) -> None:
        import asyncpg
        from sqlalchemy.engine import make_url

        url = make_url(self.database_url)
        conn = await asyncpg.connect(host=url.host, port=url.port or 5432, user=url.username, database=url.database)
        try:
            while not self._stop.is_set():
                rows = await conn.fetch("SELECT report_id FROM report_summaries")
                self._seen([r[0] for r in rows if r[0] not in self.committed])
                await asyncio.sleep(self.interval)
        finally:
            await conn.close()

    def _seen(self, report_ids: list[str]) -> None:
        now = time.time()
        for rid in report_ids:
            self.committed.setdefault(rid, now)
        count = sum(len(os.listdir(self.maildir / d)) for d in ("new", "cur") if (self.maildir / d).exists())
        if count > self.mails:
            self.mail_times += [now] * (count - self.mails)
            self.mails = count

    def wait(self, done: Callable[[], bool], timeout: float, alive: Callable[[], bool]) -> bool:
        """Poll `done` until it holds (True) or `timeout` passed or a process died (False)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if done():
                return True
            if not alive():
                return False
            time.sleep(0.2)
        return False


def percentile(values: Sequence[float], q: float) -> float:
    """The q-quantile (0..1) of values, nearest rank; nan when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered) + 0.5) - 1))]


def peak_rss_mb(pid: int) -> float:
    """Peak resident set (VmHWM) of a process plus that of each of its descendants, in MB."""
    total = 0.0
    for p in [pid, *_descendants(pid)]:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1]) / 1024
        except OSError:
            continue
    return total


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a process and its living descendants have used so far, in seconds."""
    total = 0.0
    for p in [pid, *_descendants(pid)]:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], list(children.get(pid, []))
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children.get(p, [])
    return out
