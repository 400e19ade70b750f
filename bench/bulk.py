"""Benchmark a bulk feed: a 100,000-row Shadowserver CSV about 2,000 customers through the real `abuse-desk run`.

Usage: .venv/bin/python bench/bulk.py [--rows 100000] [--customers 2000] [--third-party 2000]
                                      [--database sqlite,postgresql] [--keep] [--profile]

Builds a zipped Shadowserver `scan_redis` CSV (the column layout ingest/formats/shadowserver.py reads): half of
the customers hold a /26 (`cidr`) in 198.18.0.0/16, half a single `ip` in 198.19.0.0/17, and `--third-party`
rows name addresses of 198.19.128.0/17 that nobody in the inventory holds (RFC 2544 benchmarking range only).
For each database (`sqlite`: the desk's own file; `postgresql`: a fresh database on 127.0.0.1:5432, dropped
after) it writes the inventory, starts `abuse-desk run` in a scratch directory (its own ABUSE_DESK_HOME,
ABUSE_DESK_CONFIG and ABUSE_DESK_PREFIX), sends the report over SMTP and prints: customers named, customers with
exactly one case, stray cases, mails written (Maildir outbox, each checked to name only its recipient's
addresses), and rows/s from the `250` until the report's last case is committed (the report summary row,
written after its last group). Then it stops the process, deletes its queues and its scratch data.

The reporter is made a trusted CERT for the `shadowserver` format in the desk's [trust] section, with the tests'
DKIM key pinned (tests/dkimkey.py), and the mail is signed: the real authentication path, as a feed is believed
in production (`policy.require_confirmation=false` would bypass the trust checks the benchmark should pay for).

`--profile`: no process, no broker: parse the report and run the policy's `report_arrived` in-process on a fresh
SQLite file under cProfile (use a smaller report, e.g. `--rows 10000 --customers 200 --third-party 200`).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import ipaddress
import json
import random
import re
import shutil
import sys
import tempfile
import time
import uuid
import zipfile
from collections import Counter
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.conftest import PG_URL  # noqa: E402
from tests.dkimkey import sign, toml_trust  # noqa: E402
from tests.e2e.harness import Desk, customer  # noqa: E402

REPORTER = "feeds.cert.example"
CIDR_BASE = int(ipaddress.IPv4Address("198.18.0.0"))  # 1,024 /26 fit in 198.18.0.0/16
SINGLE_BASE = int(ipaddress.IPv4Address("198.19.0.1"))
THIRD_PARTY = ipaddress.IPv4Network("198.19.128.0/17")
COLUMNS = (
    "timestamp,ip,protocol,port,hostname,tag,asn,geo,region,city,naics,sic,version,git_sha1,git_dirty_flag,"
    "build_id,mode,os,architecture,multiplexing_api,gcc_version,process_id,run_id,uptime,connected_clients,sector"
).split(",")
_IPV4 = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])")


def holdings(customers: int) -> dict[str, ipaddress.IPv4Network]:
    """Customer id → the network it holds (a /26 for the first half, a /32 for the rest)."""
    if customers > 2048:
        raise SystemExit("--customers: at most 2048 (1,024 /26 in 198.18.0.0/16)")
    half = customers // 2
    out = {}
    for k in range(customers):
        if k < half:
            out[f"B{k:05d}"] = ipaddress.IPv4Network((CIDR_BASE + 64 * k, 26))
        else:
            out[f"B{k:05d}"] = ipaddress.IPv4Network((SINGLE_BASE + k - half, 32))
    return out


def inventory(held: dict[str, ipaddress.IPv4Network]) -> dict[str, Any]:
    """The inventory JSON: one customer, one service and one resource (`cidr` or `ip`) each."""
    resources = [
        {
            "service_id": f"S{cid}",
            "type": "ip" if net.prefixlen == 32 else "cidr",
            "value": str(net.network_address) if net.prefixlen == 32 else str(net),
            "valid_from": "2020-01-01T00:00:00Z",
        }
        for cid, net in held.items()
    ]
    return {
        "customers": [customer(cid) for cid in held],
        "services": [{"id": f"S{cid}", "customer_id": cid, "kind": "vps", "name": f"vps-{cid}"} for cid in held],
        "resources": resources,
    }


def csv_text(held: dict[str, ipaddress.IPv4Network], rows: int, third_party: int, now: datetime) -> str:
    """The scan_redis CSV: `rows` rows in all, `third_party` of them about nobody we host, shuffled."""
    rng = random.Random(15)
    mine = rows - third_party
    records: list[tuple[str, int]] = []
    ids = list(held)
    for n in range(mine):
        net = held[ids[n % len(ids)]]
        j = n // len(ids)  # the customer's j-th row: distinct (address, port) pairs
        if net.prefixlen == 32:
            records.append((str(net.network_address), 6379 + j))
        else:
            records.append((str(net.network_address + 1 + j % 62), 6379 + j // 62))
    records += [(str(THIRD_PARTY.network_address + 1 + n % 30000), 6379) for n in range(third_party)]
    rng.shuffle(records)
    out = io.StringIO()
    writer = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\n")
    writer.writerow(COLUMNS)
    for n, (ip, port) in enumerate(records):
        stamp = (now - timedelta(hours=6, seconds=n % 20000)).strftime("%Y-%m-%d %H:%M:%S")
        writer.writerow(
            [stamp, ip, "tcp", port, "", "redis", 64496, "ZZ", "BENCH", "BENCHVILLE", 518210, 0, "6.0.16",
             "00000000", 0, "a1b2c3d4e5f6", "standalone", "Linux 5.15.0 x86_64", 64, "epoll", "10.2.1",
             1000 + n % 5000, "f" * 40, 86400 + n, 3, "Communications, Service Provider, and Hosting Service"]
        )  # fmt: skip
    return out.getvalue()


def report_mail(text: str, now: datetime, msgid: str) -> tuple[bytes, str]:
    """The feed's mail: the CSV zipped as Shadowserver names it, DKIM-signed by the trusted reporter."""
    day = now.strftime("%Y-%m-%d")
    name = f"{day}-scan_redis-bench-asn64496.csv"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(name, text)
    msg = EmailMessage()
    msg["From"] = f"Feed Bench <autoreports@{REPORTER}>"
    msg["To"] = "abuse@localhost"
    msg["Subject"] = f"[BENCH] Shadowserver Open Redis Report: {day}"
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = f"<{msgid}@{REPORTER}>"
    msg.set_content("Attached is the Open Redis report for your network.\n")
    msg.add_attachment(buf.getvalue(), maintype="application", subtype="zip", filename=name + ".zip")
    return sign(msg.as_bytes(policy=SMTP), REPORTER), name


PUBLIC_URL = "https://abuse.hosting.example"  # the statement links: a name, so no address of the desk's own is in mails


def config_text() -> str:
    return f'[dsa]\npublic_url = "{PUBLIC_URL}"\n\n' + toml_trust({REPORTER: "cert"})


def owner_check(mails: list[Any], held: dict[str, ipaddress.IPv4Network]) -> tuple[Counter[str], int]:
    """Mails per recipient customer, and how many mails name an address that is not their recipient's (loopback
    is nobody's: the findings' explanations say "bind it to 127.0.0.1")."""
    by_mail = {f"{cid.lower()}@customers.example": net for cid, net in held.items()}
    per: Counter[str] = Counter()
    foreign = 0
    for m in mails:
        to = str(m["To"])
        net = by_mail.get(to)
        per[to if net is not None else f"{to}: {m['Subject']}"] += 1
        text = "\n".join(p.get_content() for p in m.walk() if p.get_content_maintype() == "text" or p.get_filename())
        found = {a for a in map(ipaddress.ip_address, filter(_valid, _IPV4.findall(text))) if not a.is_loopback}
        if net is not None and any(a not in net for a in found):
            foreign += 1
    return per, foreign


def _valid(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        return False


async def pg_admin(statement: str) -> None:
    import asyncpg
    from sqlalchemy.engine import make_url

    url = make_url(PG_URL)
    conn = await asyncpg.connect(host=url.host, port=url.port or 5432, user=url.username, database=url.database)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


def log_times(path: Path, report_id: str) -> dict[str, datetime]:
    """When the process logged the report accepted, parsed and decided (JSON log lines)."""
    wanted = {"smtp.accepted": "accepted", "normalize.parsed": "parsed", "policy.decided": "decided"}
    out: dict[str, datetime] = {}
    for line in path.read_text(errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        name = wanted.get(entry.get("event", ""))
        if name and name not in out and (name != "accepted" or entry.get("report_id") == report_id):
            out[name] = datetime.fromisoformat(entry["timestamp"].replace("Z", "+00:00"))
    return out


def run_once(database: str, args: argparse.Namespace) -> dict[str, Any]:
    """One whole run on one database; returns the figures."""
    scratch = Path(tempfile.mkdtemp(prefix=f"bulk-{database}-"))
    now = datetime.now(UTC).replace(microsecond=0)
    held = holdings(args.customers)
    text = csv_text(held, args.rows, args.third_party, now)
    raw, _ = report_mail(text, now, f"bulk-{uuid.uuid4().hex}")
    named = set(held) if args.rows - args.third_party >= len(held) else set(list(held)[: args.rows - args.third_party])
    (scratch / "inventory.json").write_text(json.dumps(inventory(held)))
    (scratch / "abuse-desk.toml").write_text(config_text())
    env = {"ABUSE_DESK_HOME": str(scratch), "ABUSE_DESK_CONFIG": str(scratch / "abuse-desk.toml")}
    pg_name = f"abuse_desk_bulk_{uuid.uuid4().hex[:10]}"
    if database == "postgresql":
        from sqlalchemy.engine import make_url

        asyncio.run(pg_admin(f'CREATE DATABASE "{pg_name}"'))
        env["ABUSE_DESK_DATABASE_URL"] = make_url(PG_URL).set(database=pg_name).render_as_string(hide_password=False)
    desk = Desk(scratch, env)
    try:
        desk.cli("inventory", "import", "inventory.json")
        desk.start()
        print(f"[{database}] report: {args.rows} rows, {len(raw) / 1e6:.2f} MB mail; sending", flush=True)
        report_id = desk.mail(raw, mail_from=f"autoreports@{REPORTER}")
        accepted = time.monotonic()
        deadline = accepted + args.timeout
        query = f"SELECT case_ids FROM report_summaries WHERE report_id = '{report_id}'"
        while not desk.rows(query):
            if time.monotonic() > deadline or desk.proc is None or desk.proc.poll() is not None:
                raise SystemExit(f"[{database}] no report summary after {args.timeout} s\n{desk.log()}")
            time.sleep(0.25)
        committed = time.monotonic() - accepted
        mails = wait_mails(desk, len(named), deadline)
        mailed = time.monotonic() - accepted
        cases = desk.rows("SELECT id, customer_id, category FROM cases")
        per_customer = Counter(c["customer_id"] for c in cases)
        per_mail, foreign = owner_check(desk.outbox(), held)
        stamps = log_times(scratch / "run.log", report_id)
        figures = {
            "database": database,
            "named": len(named),
            "exactly_one": sum(1 for cid in named if per_customer[cid] == 1),
            "stray": sum(n for cid, n in per_customer.items() if cid not in named),
            "mails": mails,
            "customers_mailed_once": sum(1 for cid in named if per_mail[f"{cid.lower()}@customers.example"] == 1),
            "customers_mailed_twice": sum(1 for cid in named if per_mail[f"{cid.lower()}@customers.example"] > 1),
            "others": {k: n for k, n in per_mail.items() if not k.endswith("@customers.example")},
            "foreign": foreign,
            "seconds": committed,
            "rows_per_s": args.rows / committed,
            "mailed_s": mailed,
            "stamps": stamps,
        }
        report(figures)
        return figures
    finally:
        desk.stop()
        if database == "postgresql":
            asyncio.run(pg_admin(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)'))
        if args.keep:
            print(f"[{database}] scratch kept: {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)


def wait_mails(desk: Desk, expected: int, deadline: float) -> int:
    """Mails in the Maildir outbox once `expected` are there and the notifier has none pending (every rendered row
    written), or once the count held still for 15 s."""
    box = desk.workdir / "var" / "outbox"
    last, still = -1, time.monotonic()
    while time.monotonic() < deadline:
        count = sum(len(list((box / sub).iterdir())) for sub in ("new", "cur") if (box / sub).exists())
        if count >= expected:
            states = Counter(r["state"] for r in desk.rows("SELECT state FROM mail_outbox"))
            if not states["pending"] and count == sum(states.values()):
                return count
        if count != last:
            last, still = count, time.monotonic()
        elif time.monotonic() - still > 15:
            return count
        time.sleep(0.5)
    return max(last, 0)


def report(f: dict[str, Any]) -> None:
    db = f["database"]
    print(f"[{db}] customers named: {f['named']}")
    print(f"[{db}] customers with exactly one case: {f['exactly_one']}")
    print(f"[{db}] stray cases: {f['stray']}")
    print(f"[{db}] mails written: {f['mails']} ({f['customers_mailed_once']} customers mailed exactly once,"
          f" {f['foreign']} naming another's address; last after {f['mailed_s']:.1f} s)")  # fmt: skip
    if f["customers_mailed_twice"] or f["others"]:
        print(f"[{db}] customers mailed more than once: {f['customers_mailed_twice']}; other mails: {f['others']}")
    print(f"[{db}] rows/s (250 → last case committed): {f['rows_per_s']:.0f} ({f['seconds']:.1f} s)")
    s = f["stamps"]
    if {"accepted", "parsed", "decided"} <= set(s):
        print(
            f"[{db}] process log: 250 → parsed {(s['parsed'] - s['accepted']).total_seconds():.1f} s,"
            f" parsed → decided {(s['decided'] - s['parsed']).total_seconds():.1f} s"
        )


def profile(args: argparse.Namespace) -> None:
    """Parse and decide in-process under cProfile (no broker, no SMTP): where the time of one report goes."""
    import cProfile
    import pstats

    from abuse_desk.ops import database
    from core.report import AbuseReport
    from core.settings import load_settings
    from ingest.authenticate import authenticate, pinned_lookup
    from ingest.parse import parse_report
    from policy.intake import report_arrived
    from policy.inventory_import import import_inventory

    scratch = Path(tempfile.mkdtemp(prefix="bulk-profile-"))
    try:
        (scratch / "abuse-desk.toml").write_text(config_text())
        settings = load_settings(
            scratch / "abuse-desk.toml",
            {
                "ABUSE_DESK_DATABASE_URL": f"sqlite:///{scratch}/abuse-desk.db",
                "ABUSE_DESK_LINK_SECRET": uuid.uuid4().hex * 2,
            },
        )
        now = datetime.now(UTC).replace(microsecond=0)
        held = holdings(args.customers)
        raw, _ = report_mail(csv_text(held, args.rows, args.third_party, now), now, "profile")
        started = time.perf_counter()
        parsed = parse_report(raw, report_id="profile-report")
        parsed.auth = authenticate(raw, pinned_lookup(settings.trust.dns_txt, None, 3.0))
        parse_s = time.perf_counter() - started
        started = time.perf_counter()
        wire = parsed.model_dump_json()
        report_in = AbuseReport.model_validate_json(wire)
        wire_s = time.perf_counter() - started
        print(f"parse {parse_s:.2f} s; message JSON round trip {wire_s:.2f} s ({len(wire) / 1e6:.1f} MB)")

        async def decide() -> list[str]:
            async with database(settings) as engine:
                async with engine.begin() as conn:
                    await import_inventory(conn, inventory(held))
                profiler = cProfile.Profile()
                started = time.perf_counter()
                profiler.enable()
                decided = await report_arrived(engine, report_in, settings, now)
                profiler.disable()
                elapsed = time.perf_counter() - started
                print(f"report_arrived: {len(set(decided))} cases, {elapsed:.2f} s, {args.rows / elapsed:.0f} rows/s")
                stats = pstats.Stats(profiler).sort_stats("tottime")
                stats.print_stats(25)
                stats.sort_stats("cumulative").print_stats(40)
                return decided

        asyncio.run(decide())
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--third-party", type=int, default=2000, help="rows naming addresses nobody here holds")
    parser.add_argument("--database", default="sqlite,postgresql", help="comma-separated: sqlite, postgresql")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds to wait for the last case")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directories")
    parser.add_argument("--profile", action="store_true", help="in-process parse + policy under cProfile")
    args = parser.parse_args()
    if args.profile:
        profile(args)
        return
    results = [run_once(db.strip(), args) for db in args.database.split(",") if db.strip()]
    target = 1660
    for f in results:
        ok = f["exactly_one"] == f["named"] and f["stray"] == 0 and f["rows_per_s"] >= target and f["foreign"] == 0
        print(f"[{f['database']}] {'PASS' if ok else 'FAIL'}: target ≥ {target} rows/s, one case each, no strays")


if __name__ == "__main__":
    main()
