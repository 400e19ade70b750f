"""Postfix policy service benchmark: abuse-desk (SQLite, PostgreSQL) and Debian's postfwd, same client, same run.

The client is what 10 smtpd processes do: 10 connections, each asking one request at a time, 200 SASL senders
round-robin, every request a RCPT counted against 60 recipients per hour (200 x 60 = 12,000 accepted; the rest
deferred). Each server starts empty (a fresh database, a fresh postfwd) and runs in its own process.

    .venv/bin/python bench/policy_service.py [--requests 16000] [--connections 10] [--skip-postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import sys
import tempfile
import time
import uuid
from pathlib import Path
from subprocess import DEVNULL

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SENDERS = 200
LIMIT = 60
PG_ADMIN = os.environ.get("ABUSE_DESK_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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


def request(i: int) -> bytes:
    s = i % SENDERS
    return (
        "request=smtpd_access_policy\nprotocol_state=RCPT\nprotocol_name=ESMTP\n"
        f"client_address=198.51.100.{s % 250}\nclient_name=laptop{s}.example\nhelo_name=laptop{s}\n"
        f"sasl_method=plain\nsasl_username=u{s}@c{s}.example\nsender=u{s}@c{s}.example\n"
        f"recipient=r{i}@far.example\nqueue_id=Q{i:08d}\ninstance=i{i}\nsize=2048\n\n"
    ).encode()


async def client(port: int, requests: int, connections: int) -> tuple[float, dict[str, int]]:
    """Requests/s over `connections` connections asking in turn; the answers by kind."""
    answers: dict[str, int] = {}

    async def smtpd(n: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for i in range(n, requests, connections):
            writer.write(request(i))
            reply = await reader.readuntil(b"\n\n")
            kind = reply.split(b"=", 1)[1].split(b" ", 1)[0].strip().decode()
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


async def serve(url: str, port: int) -> None:
    """The server process: abuse-desk's policy service as `serve postfix-policy` builds it; reports are dropped."""
    from abuse_desk.postfix_policy import policy_service
    from core.action_settings import OutboundConfig
    from core.db import create_engine
    from core.messages import Message

    async def publish(_: Message) -> None:
        return None

    service = policy_service(create_engine(url), OutboundConfig(recipients_per_hour=LIMIT), publish)
    await service.start("127.0.0.1", port)
    await asyncio.Event().wait()


async def run_abuse_desk(label: str, url: str, args: argparse.Namespace) -> None:
    await prepare(url)
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--serve", url, "--port", str(port), stdout=DEVNULL, stderr=DEVNULL
    )
    try:
        await wait_port(port)
        rate, answers = await client(port, args.requests, args.connections)
        print(f"abuse-desk {label:<10} {rate:8.0f} requests/s  answers={answers}", flush=True)
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 10)


async def run(*argv: str) -> None:
    proc = await asyncio.create_subprocess_exec(*argv, stdout=DEVNULL, stderr=DEVNULL)
    await proc.wait()


async def run_postfwd(scratch: Path, args: argparse.Namespace) -> None:
    binary = shutil.which("postfwd") or shutil.which("postfwd2")
    if binary is None:
        print("postfwd    (not installed: apt-get install postfwd)", flush=True)
        return
    rules = scratch / "postfwd.cf"
    rules.write_text(
        "id=RCPT_RATE; protocol_state==RCPT; sasl_username=~.+; "
        f"action=rate(sasl_username/{LIMIT}/3600/450 4.7.1 $$sasl_username has sent to {LIMIT} recipients)\n",
        encoding="utf-8",
    )
    port, cache_port = free_port(), free_port()
    pidfile = scratch / "postfwd.pid"
    common = ["--file", str(rules), "--pidfile", str(pidfile), "--user", "nobody", "--group", "nogroup"]
    common += ["--interface", "127.0.0.1", "--port", str(port), "--cache_port", str(cache_port), "--nodns"]
    os.chmod(scratch, 0o777)
    await run(binary, "--daemon", *common)
    try:
        await wait_port(port)
        rate, answers = await client(port, args.requests, args.connections)
        print(f"postfwd    {'(rate())':<10} {rate:8.0f} requests/s  answers={answers}", flush=True)
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
    print(f"{args.connections} connections, {SENDERS} senders, {args.requests} RCPT requests each, {LIMIT}/hour")
    with tempfile.TemporaryDirectory(prefix="policy-bench-") as tmp:
        scratch = Path(tmp)
        await run_abuse_desk("sqlite", f"sqlite:///{scratch}/bench.db", args)
        if not args.skip_postgres:
            name = f"policy_bench_{uuid.uuid4().hex[:8]}"
            await pg_admin(f'CREATE DATABASE "{name}"')
            try:
                base = PG_ADMIN.rsplit("/", 1)[0]
                await run_abuse_desk("postgresql", f"{base}/{name}", args)
            finally:
                await pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await run_postfwd(scratch, args)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=16_000)
    parser.add_argument("--connections", type=int, default=10)
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parsed = parser.parse_args()
    if parsed.serve:
        asyncio.run(serve(parsed.serve, parsed.port))
    else:
        asyncio.run(main(parsed))
