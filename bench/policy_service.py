"""Postfix policy service benchmark: abuse-desk (SQLite, PostgreSQL) and Debian's postfwd, same client, same run.

The client is what 10 smtpd processes do: 10 connections, each asking one request at a time, 200 SASL senders
round-robin, every request a RCPT counted against 60 recipients per hour (200 x 60 = 12,000 accepted; the rest
deferred). Each server starts empty (a fresh database, a fresh postfwd) and runs in its own process.

postfwd's rule is `rate(sasl_username/60/3600/450 ...)` at protocol_state RCPT: one request per recipient, so
its request counter is the recipient count (`rcpt()` adds the request's recipient_count, which Postfix sends
as 0 at RCPT: it never defers there). Its counters live in the cache daemon (postfwd2::cache), which only
starts with a valid cache socket: a unix socket path given with --cache_proto unix (a bare port number with
the default unix proto leaves no cache daemon, and every request is answered DUNNO). Before each timed run a
probe sender asks 61 times and must be deferred exactly at the 61st; after it the answers must be the same
on every server (12,000 DUNNO and 4,000 deferrals by default), or the line says NOT LIKE FOR LIKE.

    .venv/bin/python bench/policy_service.py [--requests 16000] [--connections 10] [--skip-postgres]
        [--servers sqlite,postgresql,postfwd]
        [--profile DIR]   (cProfile each abuse-desk server process, stats written to DIR/<label>.prof)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from subprocess import DEVNULL

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.packages import ensure_debian_package
from tests.conftest import free_port

SENDERS = 200
LIMIT = 60
PG_ADMIN = os.environ.get("ABUSE_DESK_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def inventory() -> dict[str, list[dict[str, str]]]:
    return {
        "customers": [
            {"id": f"C{i}", "name": f"c{i}", "email": f"u{i}@c{i}.example", "created_at": "2021-01-01"}
            for i in range(SENDERS)
        ],
        "services": [
            {"id": f"S{i}", "customer_id": f"C{i}", "kind": "mailbox", "name": f"m{i}"} for i in range(SENDERS)
        ],
        "resources": [{"service_id": f"S{i}", "type": "domain", "value": f"c{i}.example"} for i in range(SENDERS)],
    }


def request(i: int, login: str = "") -> bytes:
    s = i % SENDERS
    login = login or f"u{s}@c{s}.example"
    return (
        "request=smtpd_access_policy\nprotocol_state=RCPT\nprotocol_name=ESMTP\n"
        f"client_address=198.51.100.{s % 250}\nclient_name=laptop{s}.example\nhelo_name=laptop{s}\n"
        f"sasl_method=plain\nsasl_username={login}\nsender={login}\n"
        f"recipient=r{i}@far.example\nrecipient_count=0\nqueue_id=Q{i:08d}\ninstance=i{i}\nsize=2048\n\n"
    ).encode()


def kind_of(reply: bytes) -> str:
    return reply.split(b"=", 1)[1].split(b" ", 1)[0].strip().decode()


def expected(requests: int) -> dict[str, int]:
    """What a 60/hour limit per sender answers to the workload."""
    accepted = sum(min(LIMIT, len(range(s, requests, SENDERS))) for s in range(SENDERS))
    return {k: n for k, n in (("DUNNO", accepted), ("450", requests - accepted)) if n}


async def probe(port: int) -> str:
    """61 recipients from one sender outside the workload: "" when exactly the 61st is deferred."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    kinds = []
    for i in range(LIMIT + 1):
        writer.write(request(i, login="probe@bench.example"))
        kinds.append(kind_of(await reader.readuntil(b"\n\n")))
    writer.close()
    if kinds == ["DUNNO"] * LIMIT + ["450"]:
        return ""
    return f"probe: the {LIMIT + 1}st recipient got {kinds[-1]}, deferrals {kinds.count('450')}"


def verdict(answers: dict[str, int], probed: str, requests: int) -> str:
    if probed:
        return f"  NOT LIKE FOR LIKE ({probed})"
    want = expected(requests)
    return "" if answers == want else f"  NOT LIKE FOR LIKE (expected {want})"


async def client(port: int, requests: int, connections: int) -> tuple[float, dict[str, int]]:
    """Requests/s over `connections` connections asking in turn; the answers by kind."""
    answers: dict[str, int] = {}

    async def smtpd(n: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for i in range(n, requests, connections):
            writer.write(request(i))
            kind = kind_of(await reader.readuntil(b"\n\n"))
            answers[kind] = answers.get(kind, 0) + 1
        writer.close()

    start = time.perf_counter()
    await asyncio.gather(*(smtpd(n) for n in range(connections)))
    return requests / (time.perf_counter() - start), answers


async def wait_port(port: int, seconds: float = 30.0) -> None:
    for _ in range(int(seconds * 20)):
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            await asyncio.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


async def prepare(url: str) -> None:
    from abuse_desk.database import upgrade
    from core.db import create_engine
    from policy.inventory import import_inventory

    engine = create_engine(url)
    await upgrade(engine)
    async with engine.begin() as conn:
        await import_inventory(conn, inventory())
    await engine.dispose()


async def serve(url: str, port: int, profile: str | None) -> None:
    """The server process: abuse-desk's policy service as `serve postfix-policy` builds it; reports are dropped."""
    import cProfile
    import signal

    from abuse_desk.postfix_policy import policy_service
    from core.action_settings import OutboundConfig
    from core.db import create_engine
    from core.messages import Message

    async def publish(_: Message) -> None:
        return None

    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    profiler = cProfile.Profile() if profile else None
    service = policy_service(create_engine(url), OutboundConfig(recipients_per_hour=LIMIT), publish)
    await service.start("127.0.0.1", port)
    if profiler is not None:
        profiler.enable()
    await stop.wait()
    if profiler is not None and profile:
        profiler.disable()
        profiler.dump_stats(profile)
    await service.stop()


async def run_abuse_desk(label: str, url: str, args: argparse.Namespace) -> None:
    await prepare(url)
    port = free_port()
    extra = ["--profile", str(Path(args.profile) / f"{label}.prof")] if args.profile else []
    proc = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--serve", url, "--port", str(port), *extra, stdout=DEVNULL, stderr=DEVNULL
    )
    try:
        await wait_port(port)
        probed = await probe(port)
        rate, answers = await client(port, args.requests, args.connections)
        check = verdict(answers, probed, args.requests)
        print(f"abuse-desk {label:<10} {rate:8.0f} requests/s  answers={answers}{check}", flush=True)
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 30)


async def run(*argv: str) -> None:
    proc = await asyncio.create_subprocess_exec(*argv, stdout=DEVNULL, stderr=DEVNULL)
    await proc.wait()


async def run_postfwd(scratch: Path, args: argparse.Namespace) -> None:
    binary = ensure_debian_package("postfwd", "postfwd")  # the package links postfwd to postfwd2
    rules = scratch / "postfwd.cf"
    rules.write_text(
        "id=RCPT_RATE; protocol_state==RCPT; sasl_username=~.+; "
        f"action=rate(sasl_username/{LIMIT}/3600/450 4.7.1 $$sasl_username has sent to {LIMIT} recipients)\n",
        encoding="utf-8",
    )
    port = free_port()
    pidfile = scratch / "postfwd.pid"
    common = ["--file", str(rules), "--pidfile", str(pidfile), "--user", "nobody", "--group", "nogroup"]
    common += ["--interface", "127.0.0.1", "--port", str(port), "--nodns"]
    # The rate counters live in the cache daemon; it needs a socket path (with a dot) it can create.
    common += ["--cache_proto", "unix", "--cache_port", str(scratch / "postfwd-cache.socket")]
    os.chmod(scratch, 0o777)
    await run(binary, "--daemon", *common)
    try:
        await wait_port(port)
        probed = await probe(port)
        rate, answers = await client(port, args.requests, args.connections)
        check = verdict(answers, probed, args.requests)
        print(f"postfwd    {'(rate())':<10} {rate:8.0f} requests/s  answers={answers}{check}", flush=True)
    finally:
        await run(binary, "--kill", *common)


async def pg_admin(statement: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


async def main(args: argparse.Namespace) -> None:
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"{args.connections} connections, {SENDERS} senders, {args.requests} RCPT requests, {LIMIT}/hour;", end=" ")
    print(f"expected {expected(args.requests)}; load average {load}", flush=True)
    with tempfile.TemporaryDirectory(prefix="policy-bench-") as tmp:
        scratch = Path(tmp)
        if "sqlite" in args.servers:
            await run_abuse_desk("sqlite", f"sqlite:///{scratch}/bench.db", args)
        if "postgresql" in args.servers and not args.skip_postgres:
            name = f"policy_bench_{uuid.uuid4().hex[:8]}"
            await pg_admin(f'CREATE DATABASE "{name}"')
            try:
                base = PG_ADMIN.rsplit("/", 1)[0]
                await run_abuse_desk("postgresql", f"{base}/{name}", args)
            finally:
                await pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if "postfwd" in args.servers:
            await run_postfwd(scratch, args)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=16_000)
    parser.add_argument("--connections", type=int, default=10)
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument("--servers", default="sqlite,postgresql,postfwd", help="which to run (comma-separated)")
    parser.add_argument("--profile", help="cProfile each abuse-desk server into this folder")
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parsed = parser.parse_args()
    import uvloop  # the event loop every `abuse-desk serve` runs on; the client uses it too, for every server

    if parsed.serve:
        uvloop.run(serve(parsed.serve, parsed.port, parsed.profile))
    else:
        uvloop.run(main(parsed))
