"""Benchmark the whole pipeline: throughput, latency per report and peak RSS per process (issue 12, goals 2 and 5).

Usage: .venv/bin/python bench/e2e.py [--database sqlite,postgresql] [--customers 500] [--reports 3000]
                                     [--clients 8] [--rate 50] [--paced-seconds 20] [--bulk-rows 100000]
                                     [--mixed-seconds 30] [--skip-bulk] [--policy-replicas 1] [--keep]
       .venv/bin/python bench/e2e.py --profile [--reports 300] [--batch 1] [--database postgresql] [--plain]
                                     (in-process, no broker)

`sqlite`: the real `abuse-desk run` (one process) on its own SQLite file. `postgresql`: the components as separate
processes (`abuse-desk serve smtp|normalize|policy|scheduler|suspend|notify`) on a fresh database on
127.0.0.1:5432, dropped after. Each in a scratch directory with its own ABUSE_DESK_HOME, configuration and broker
prefix; the queues and the scratch directory are deleted at the end.

The inventory: `--customers` customers, each holding one address of 10.88.0.0/16 (plus, for the mixed run,
bench/bulk.py's 2,000 feed customers). The load: distinct freetext complaints (a phishing URL on the customer's
address) signed by a trusted reporter (the tests' pinned DKIM key), complaint k about customer k mod N.

Phases, one after the other on the same desk:
1. burst: `--reports` complaints from `--clients` concurrent SMTP sessions as fast as they are accepted.
   accepted/s at SMTP (first MAIL → last 250) and refusals (each refused mail is sent again, up to 3 times);
   reports/s from the first 250 to the last decision committed, and to the last mail in the Maildir outbox
   (once every report is decided and the policy's and notify's outboxes are empty).
2. paced: `--rate` complaints/s for `--paced-seconds`: p50/p99 latency per report.
3. mixed (goal 5): a `--bulk-rows` Shadowserver report (bench/bulk.py's generator) sent first, then ordinary
   complaints at `--rate`/s for `--mixed-seconds`: p50/p99 of the ordinary ones, and when the bulk report ended.

Latency of a report: from the client's `250` to the moment its report summary row (written in the same
transaction as its decision) is first seen committed by a poller that reads the database every 50 ms, so each
figure is late by at most ~50 ms plus one query. Peak RSS: VmHWM of each process and its children
(/proc/PID/status), read after the last phase (the peak over the whole run).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import bulk  # noqa: E402
from bench.e2e_load import Poller, Sent, cpu_seconds, peak_rss_mb, percentile, send  # noqa: E402
from tests.conftest import PG_URL, free_port  # noqa: E402
from tests.dkimkey import sign, toml_trust  # noqa: E402
from tests.e2e.harness import SCRIPT, Desk, customer  # noqa: E402

REPORTER = "reporter.example"
SENDER = f"victim@{REPORTER}"
UNMAILED = (
    "SELECT count(*) AS n FROM policy_outbox p WHERE p.type = 'notification.send.v1' AND NOT p.held AND NOT EXISTS"
    " (SELECT 1 FROM mail_outbox m WHERE m.command_id = p.message_id AND m.state <> 'pending')"
)
COMPONENTS = ("smtp", "normalize", "policy", "scheduler", "suspend", "notify")


def ip(i: int) -> str:
    return f"10.88.{i // 250}.{i % 250 + 1}"


def complaint(k: int, customers: int, tag: str) -> bytes:
    """Complaint k (about customer k mod `customers`), distinct by its Message-ID and text."""
    addr = ip(k % customers)
    raw = (
        f"From: Victor Victim <{SENDER}>\r\nTo: abuse@localhost\r\nSubject: Phishing from {addr} #{tag}{k}\r\n"
        f"Message-ID: <{tag}{k}-{uuid.uuid4().hex[:8]}@{REPORTER}>\r\nDate: Sat, 28 Nov 2026 10:00:00 +0100\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\n\r\n"
        f"Hello,\r\n\r\nThe server at {addr} hosts a phishing page imitating my bank (sighting {tag}{k}):\r\n"
        f"http://{addr}/secure/login-{k}.php\r\nPlease take it down.\r\n\r\nVictor\r\n"
    ).encode()
    return sign(raw, REPORTER)


def inventory(customers: int, with_bulk: bool) -> dict[str, Any]:
    ids = [f"E{i:04d}" for i in range(customers)]
    out: dict[str, Any] = {
        "customers": [customer(c) for c in ids],
        "services": [{"id": f"S{c}", "customer_id": c, "kind": "vps", "name": f"vps-{c}"} for c in ids],
        "resources": [
            {"service_id": f"S{c}", "type": "ip", "value": ip(i), "valid_from": "2020-01-01T00:00:00Z"}
            for i, c in enumerate(ids)
        ],
    }
    if with_bulk:
        feed = bulk.inventory(bulk.holdings(2000))
        for key in out:
            out[key] += feed[key]
    return out


@dataclass
class Bench:
    """One desk under test: its scratch directory, environment and processes."""

    database: str
    scratch: Path
    desk: Desk
    pg_name: str = ""
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.desk.env.get("ABUSE_DESK_DATABASE_URL", "")

    def poller(self) -> Poller:
        return Poller(self.url, self.scratch / "var" / "abuse-desk.db", self.scratch / "var" / "outbox")

    def alive(self) -> bool:
        if self.desk.proc is not None:
            return self.desk.proc.poll() is None
        return all(p.poll() is None for p in self.procs.values())

    def pids(self) -> dict[str, int]:
        if self.desk.proc is not None:
            return {"run": self.desk.proc.pid}
        return {name: p.pid for name, p in self.procs.items()}

    def count(self, query: str) -> int:
        return int(self.desk.rows(query)[0]["n"])

    def settled(self) -> bool:
        """Every command published and every mail command (not held) written by the notifier (sent or failed)."""
        unpublished = self.count("SELECT count(*) AS n FROM policy_outbox WHERE published_at IS NULL")
        return unpublished == 0 and self.count(UNMAILED) == 0

    def logs(self) -> str:
        if self.desk.proc is not None:
            return self.desk.log()
        tails = [(n, (self.scratch / f"{n}.log").read_text(errors="replace")[-2000:]) for n in self.procs]
        return "\n".join(f"--- {n}\n{tail}" for n, tail in tails)


def open_bench(database: str, args: argparse.Namespace) -> Bench:
    scratch = Path(tempfile.mkdtemp(prefix=f"e2e-{database}-"))
    (scratch / "inventory.json").write_text(json.dumps(inventory(args.customers, not args.skip_bulk)))
    trust = toml_trust({REPORTER: "cert", bulk.REPORTER: "cert"})
    (scratch / "abuse-desk.toml").write_text(f'[dsa]\npublic_url = "{bulk.PUBLIC_URL}"\n\n{trust}')
    env = {"ABUSE_DESK_HOME": str(scratch), "ABUSE_DESK_CONFIG": str(scratch / "abuse-desk.toml")}
    pg_name = ""
    if database == "postgresql":
        from sqlalchemy.engine import make_url

        pg_name = f"abuse_desk_e2e_{uuid.uuid4().hex[:10]}"
        asyncio.run(bulk.pg_admin(f'CREATE DATABASE "{pg_name}"'))
        env["ABUSE_DESK_DATABASE_URL"] = make_url(PG_URL).set(database=pg_name).render_as_string(hide_password=False)
    b = Bench(database, scratch, Desk(scratch, env), pg_name)
    b.desk.cli("db", "upgrade")
    b.desk.cli("inventory", "import", "inventory.json")
    if database == "sqlite":
        b.desk.start()
        return b
    metrics = {}
    processes = {name: name for name in COMPONENTS}  # process name -> the component it serves
    processes |= {f"policy-{i}": "policy" for i in range(2, args.policy_replicas + 1)}  # more `serve policy`
    for name, component in processes.items():
        metrics[name] = free_port()
        penv = b.desk.env | {"ABUSE_DESK_METRICS_LISTEN": f"127.0.0.1:{metrics[name]}"}
        log = open(scratch / f"{name}.log", "wb")  # kept open for the process's life
        b.procs[name] = subprocess.Popen([SCRIPT, "serve", component], cwd=scratch, env=penv, stdout=log, stderr=log)
    deadline = time.monotonic() + 90
    for name, port in metrics.items():
        while True:
            if b.procs[name].poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"[{database}] {name} did not come up:\n{b.logs()}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            time.sleep(0.2)
    return b


def close_bench(b: Bench, keep: bool) -> None:
    for proc in b.procs.values():
        if proc.poll() is None:
            proc.terminate()
    for proc in b.procs.values():
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
    b.desk.stop()  # stops `run` (if it is the one) and deletes the prefix's queues
    if b.pg_name:
        asyncio.run(bulk.pg_admin(f'DROP DATABASE IF EXISTS "{b.pg_name}" WITH (FORCE)'))
    if keep:
        print(f"[{b.database}] scratch kept: {b.scratch}")
    else:
        shutil.rmtree(b.scratch, ignore_errors=True)


def latencies(sent: Sent, committed: dict[str, float]) -> list[float]:
    return [committed[rid] - at for rid, at in sent.accepted.items() if rid in committed]


def burst(b: Bench, args: argparse.Namespace, out: list[str]) -> None:
    tag = f"[{b.database}] burst"
    mails = [complaint(k, args.customers, "b") for k in range(args.reports)]
    cpu_before = {name: cpu_seconds(pid) for name, pid in b.pids().items()}
    with b.poller() as poll:
        sent = send(b.desk.smtp_port, mails, SENDER, clients=args.clients)
        decided = poll.wait(lambda: all(r in poll.committed for r in sent.accepted), args.timeout, b.alive)
        settled = decided and poll.wait(b.settled, args.timeout, b.alive)
        time.sleep(1.0)  # the last mails written by the notifier after its outbox row turned `sent`
    cpu = {name: cpu_seconds(pid) - cpu_before[name] for name, pid in b.pids().items()}
    first = min(sent.accepted.values())
    done = [poll.committed[r] for r in sent.accepted if r in poll.committed]
    smtp_rate = len(sent.accepted) / (max(sent.accepted.values()) - sent.started)
    out.append(f"{tag}: {len(sent.accepted)} accepted at SMTP, {smtp_rate:.0f}/s, {sent.refusals} refusals")
    if not decided:
        out.append(f"{tag}: only {len(done)} of {len(sent.accepted)} decided after {args.timeout:.0f} s")
        print(b.logs()[-3000:])
    last = max(done)
    out.append(f"{tag}: {len(done) / (last - first):.1f} reports/s, first 250 → last decision committed"
               f" ({last - first:.1f} s)")  # fmt: skip
    if settled and poll.mail_times:
        end = max(last, poll.mail_times[-1])  # decided and mailed (a report that joins a case may send no mail)
        out.append(f"{tag}: {len(done) / (end - first):.1f} reports/s, first 250 → last decision and last mail in"
                   f" the outbox ({poll.mails} mails, {end - first:.1f} s)")  # fmt: skip
    per_report = ", ".join(f"{name} {1000 * s / max(len(done), 1):.1f}" for name, s in cpu.items())
    out.append(f"{tag}: CPU ms per report (user + system, each process with its children): {per_report}")
    lat = latencies(sent, poll.committed)
    out.append(f"{tag}: latency under the burst p50 {percentile(lat, 0.5):.2f} s, p99 {percentile(lat, 0.99):.2f} s")


def paced(b: Bench, args: argparse.Namespace, out: list[str]) -> None:
    tag = f"[{b.database}] paced {args.rate:.0f}/s"
    n = int(args.rate * args.paced_seconds)
    mails = [complaint(k, args.customers, "p") for k in range(n)]
    with b.poller() as poll:
        sent = send(b.desk.smtp_port, mails, SENDER, clients=args.clients, rate=args.rate)
        poll.wait(lambda: all(r in poll.committed for r in sent.accepted), args.timeout, b.alive)
    lat = latencies(sent, poll.committed)
    p50, p99 = percentile(lat, 0.5), percentile(lat, 0.99)
    out.append(f"{tag}: {len(lat)}/{n} decided, {sent.refusals} refusals, latency 250 → decision committed"
               f" p50 {p50:.2f} s, p99 {p99:.2f} s, max {max(lat, default=float('nan')):.2f} s")  # fmt: skip


def mixed(b: Bench, args: argparse.Namespace, out: list[str]) -> None:
    tag = f"[{b.database}] mixed"
    from datetime import UTC, datetime

    now = datetime.now(UTC).replace(microsecond=0)
    text = bulk.csv_text(bulk.holdings(2000), args.bulk_rows, 2000, now)
    raw, _ = bulk.report_mail(text, now, f"bulk-{uuid.uuid4().hex}")
    n = int(args.rate * args.mixed_seconds)
    mails = [complaint(k, args.customers, "m") for k in range(n)]
    with b.poller() as poll:
        big = send(b.desk.smtp_port, [raw], f"autoreports@{bulk.REPORTER}", clients=1)
        sent = send(b.desk.smtp_port, mails, SENDER, clients=args.clients, rate=args.rate)
        poll.wait(lambda: all(r in poll.committed for r in sent.accepted), args.timeout, b.alive)
        poll.wait(lambda: all(r in poll.committed for r in big.accepted), args.timeout, b.alive)
    lat = latencies(sent, poll.committed)
    bulk_s = latencies(big, poll.committed)
    ended = f"decided {bulk_s[0]:.1f} s after its 250" if bulk_s else "not decided"
    out.append(f"{tag}: {args.bulk_rows}-row bulk report sent first ({len(raw) / 1e6:.1f} MB), {ended}")
    out.append(f"{tag}: {len(lat)}/{n} ordinary complaints at {args.rate:.0f}/s behind it: latency"
               f" p50 {percentile(lat, 0.5):.2f} s, p99 {percentile(lat, 0.99):.2f} s (goal < 2 s),"
               f" max {max(lat, default=float('nan')):.2f} s")  # fmt: skip
    windows: dict[int, list[float]] = {}
    for rid, at in sent.accepted.items():
        if rid in poll.committed:
            windows.setdefault(int((at - sent.started) // 5), []).append(poll.committed[rid] - at)
    by_window = ", ".join(f"{5 * w}-{5 * w + 5} s {percentile(v, 0.99):.2f}" for w, v in sorted(windows.items()))
    out.append(f"{tag}: p99 of the ordinary ones by when they were sent (5-second windows): {by_window}")


def _apart_peak(b: Bench) -> str:
    """The peak of the child processes that parsed big mails (ingest.apart): they have ended, so /proc has no
    figure of theirs; normalize logs the largest it waited for."""
    path = b.desk.workdir / "run.log" if b.desk.proc is not None else b.scratch / "normalize.log"
    logs = path.read_text(errors="replace") if path.exists() else ""
    peaks = [int(m) for m in re.findall(r'"children_peak_mb": (\d+)', logs)]
    return f"; the child that parsed a big mail (ingest.apart) {max(peaks)} MB" if peaks else ""


def run_once(database: str, args: argparse.Namespace) -> list[str]:
    out: list[str] = []
    b = open_bench(database, args)
    try:
        burst(b, args, out)
        if args.paced_seconds > 0:
            paced(b, args, out)
        if not args.skip_bulk:
            mixed(b, args, out)
        rss = ", ".join(f"{name} {peak_rss_mb(pid):.0f} MB" for name, pid in b.pids().items())
        out.append(f"[{database}] peak RSS per process (VmHWM, with children): {rss}{_apart_peak(b)}")
    finally:
        for line in out:
            print(line, flush=True)
        close_bench(b, args.keep)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--database", default="sqlite,postgresql", help="comma-separated: sqlite, postgresql")
    parser.add_argument("--customers", type=int, default=500)
    parser.add_argument("--reports", type=int, default=3000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--paced-seconds", type=float, default=20.0)
    parser.add_argument("--bulk-rows", type=int, default=100_000)
    parser.add_argument("--mixed-seconds", type=float, default=30.0)
    parser.add_argument("--skip-bulk", action="store_true")
    parser.add_argument("--policy-replicas", type=int, default=1, help="postgresql: `serve policy` processes")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for each phase's decisions")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directories")
    parser.add_argument("--profile", action="store_true", help="in-process policy under cProfile, SQL counted")
    parser.add_argument("--batch", type=int, default=0, help="--profile: reports per transaction (0: one by one)")
    parser.add_argument("--plain", action="store_true", help="--profile without cProfile: rate and CPU per report")
    args = parser.parse_args()
    if args.profile:
        from bench.e2e_profile import profile

        database = args.database.split(",")[0].strip()  # --profile: the first one given (default sqlite)
        profile(args.reports if args.reports != 3000 else 300, args.customers, args.batch, database, args.plain)
        return
    lines = [line for db in args.database.split(",") if db.strip() for line in run_once(db.strip(), args)]
    print("\n".join(["", "summary:", *lines]))


if __name__ == "__main__":
    main()
