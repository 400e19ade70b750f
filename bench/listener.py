"""Benchmark the abuse@ listener against Postfix's durable accept and a bare aiosmtpd sink, same client, same run.

Usage: .venv/bin/python bench/listener.py [--rounds 3] [--messages 5000] [--sessions 20] [--size 5000]

Installs Debian's `postfix` when `smtp-source` is missing (apt-get; needs root). Runs, each in a scratch
directory and on its own loopback port: a Postfix instance with its own minimal main.cf/master.cf (smtpd →
cleanup → queue file → qmgr → discard; the machine's /etc/postfix is never used), a bare aiosmtpd sink
(accepts, does nothing; on the same event loop abuse-desk uses), and `abuse-desk serve smtp` with a fresh
ABUSE_DESK_PREFIX against the local RabbitMQ. Each round measures all three with `smtp-source -s 20 -m 5000
-l 5000`, checks that abuse-desk's queue holds exactly one message per 250, and purges it. Prints per-round
rates and the ratios abuse-desk/Postfix and abuse-desk/bare; stops everything and deletes its queues. With
`--processes N` (default 2) it also measures N `serve smtp` processes sharing the port (`smtp.reuse_port`),
the way Postfix runs many smtpd processes; the single-process figure is always printed beside it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.packages import ensure_debian_package  # noqa: E402

AMQP_URL = os.environ.get("ABUSE_DESK_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
SENDER, RECIPIENT = "bench@example.org", "abuse@localhost"

MAIN_CF = """\
compatibility_level = 3.6
queue_directory = {scratch}/queue
data_directory = {scratch}/data
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = postfix-bench.localhost
mydestination =
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject
smtpd_recipient_restrictions = permit_mynetworks, reject
default_transport = discard
relay_transport = discard
local_transport = discard
maillog_file_prefixes = {scratch}
maillog_file = {scratch}/maillog
syslog_name = postfix-bench
smtpd_client_connection_count_limit = 0
smtpd_client_connection_rate_limit = 0
default_process_limit = 100
biff = no
"""

MASTER_CF = """\
127.0.0.1:{port} inet n - n - - smtpd
pickup    unix  n - n 60 1 pickup
cleanup   unix  n - n - 0 cleanup
qmgr      unix  n - n 300 1 qmgr
rewrite   unix  - - n - - trivial-rewrite
bounce    unix  - - n - 0 bounce
defer     unix  - - n - 0 bounce
trace     unix  - - n - 0 bounce
verify    unix  - - n - 1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n - - proxymap
anvil     unix  - - n - 1 anvil
scache    unix  - - n - 1 scache
showq     unix  n - n - - showq
error     unix  - - n - - error
retry     unix  - - n - - error
discard   unix  - - n - - discard
postlog   unix-dgram n - n - 1 postlogd
"""

SINK = """\
import asyncio, sys
from aiosmtpd.smtp import SMTP
class Sink:
    async def handle_DATA(self, server, session, envelope):
        return "250 OK"
async def main():
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(Sink(), decode_data=False), "127.0.0.1", int(sys.argv[1]))
    await server.serve_forever()
try:
    import uvloop
    uvloop.run(main())
except ImportError:
    asyncio.run(main())
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 60.0, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                if s.recv(1024).startswith(b"220"):
                    return
        except OSError:
            pass
        time.sleep(0.2)
    tail = log.read_text(errors="replace")[-3000:] if log is not None and log.exists() else ""
    raise SystemExit(f"nothing answered SMTP on 127.0.0.1:{port} within {timeout}s\n{tail}")


def ensure_postfix() -> None:
    """smtp-source (the client) and postfix (the anchor): both in Debian's postfix package."""
    for binary in ("smtp-source", "postfix"):
        ensure_debian_package("postfix", binary, "postfix postfix/main_mailer_type select No configuration\n")


@contextmanager
def postfix_instance(scratch: Path, port: int) -> Iterator[None]:
    """A Postfix of our own: its own config directory and queue, loopback only, everything discarded."""
    conf = scratch / "postfix"
    (conf / "queue").mkdir(parents=True)
    (conf / "data").mkdir()
    (conf / "main.cf").write_text(MAIN_CF.format(scratch=conf))
    (conf / "master.cf").write_text(MASTER_CF.format(port=port))
    shutil.chown(conf / "data", user="postfix")
    subprocess.run(["postfix", "-c", str(conf), "start"], check=True, capture_output=True)
    try:
        wait_port(port, log=conf / "maillog")
        yield
    finally:
        subprocess.run(["postfix", "-c", str(conf), "stop"], check=False, capture_output=True)


@contextmanager
def process(cmd: list[str], port: int, log: Path, env: dict[str, str] | None = None) -> Iterator[None]:
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=log.parent)
        try:
            wait_port(port, log=log)
            yield
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def smtp_source(port: int, messages: int, sessions: int, size: int) -> float:
    """Messages per second smtp-source got a reply to DATA for (it stops at the first error reply)."""
    cmd = ["smtp-source", "-s", str(sessions), "-m", str(messages), "-l", str(size)]
    cmd += ["-f", SENDER, "-t", RECIPIENT, f"127.0.0.1:{port}"]
    start = time.perf_counter()
    result = subprocess.run(cmd, capture_output=True, timeout=900)
    elapsed = time.perf_counter() - start
    if result.returncode != 0 or result.stderr.strip():
        raise SystemExit(f"smtp-source on port {port} failed: {result.stderr.decode(errors='replace')[:500]}")
    return messages / elapsed


async def _queue_depth(prefix: str, purge: bool) -> int:
    from core.broker import Broker

    broker = Broker(AMQP_URL, prefix)
    await broker.connect(attempts=3, declare=False)
    try:
        depth = {s.queue: s.messages for s in await broker.stats()}["ingest.normalize"]
        if purge:
            await broker.purge("ingest.normalize")
        return depth
    finally:
        await broker.close()


async def _delete(prefix: str) -> None:
    from core.broker import Broker

    broker = Broker(AMQP_URL, prefix)
    await broker.connect(attempts=3, declare=False)
    await broker.delete_topology()
    await broker.close()


def desk_env(scratch: Path, prefix: str, port: int, n: int, config: Path | None) -> dict[str, str]:
    env = dict(
        os.environ,
        ABUSE_DESK_PREFIX=prefix,
        ABUSE_DESK_AMQP_URL=AMQP_URL,
        ABUSE_DESK_SMTP_LISTEN=f"127.0.0.1:{port}",
        ABUSE_DESK_METRICS_LISTEN=f"127.0.0.1:{free_port()}",
        ABUSE_DESK_DATABASE_URL=f"sqlite:///{scratch}/abuse-desk-{port}-{n}.db",
        ABUSE_DESK_MAIL_OUT=str(scratch / "outbox"),
    )
    if config is not None:
        env["ABUSE_DESK_CONFIG"] = str(config)
    return env


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--messages", type=int, default=5000)
    ap.add_argument("--sessions", type=int, default=20)
    ap.add_argument("--size", type=int, default=5000)
    ap.add_argument("--processes", type=int, default=2, help="also measure N `serve smtp` sharing the port (0: no)")
    ap.add_argument("--settle", type=float, default=3.0, help="seconds of rest after each abuse-desk run's purge")
    args = ap.parse_args()
    ensure_postfix()
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    ports = {"postfix": free_port(), "bare": free_port(), "abuse-desk": free_port()}
    multi = f"abuse-desk x{args.processes}"
    if args.processes > 1:
        ports[multi] = free_port()
    rates: dict[str, list[float]] = {name: [] for name in ports}
    with tempfile.TemporaryDirectory(prefix="abuse-desk-bench-") as tmp, ExitStack() as stack:
        scratch = Path(tmp)
        os.chmod(scratch, 0o755)  # the postfix user must reach its queue directory
        shared = scratch / "reuse-port.toml"
        shared.write_text("[smtp]\nreuse_port = true\n")
        desk = [str(Path(sys.executable).with_name("abuse-desk")), "serve", "smtp"]
        try:
            stack.enter_context(postfix_instance(scratch, ports["postfix"]))
            sink = [sys.executable, "-c", SINK, str(ports["bare"])]
            stack.enter_context(process(sink, ports["bare"], scratch / "sink.log"))
            env = desk_env(scratch, prefix, ports["abuse-desk"], 0, None)
            stack.enter_context(process(desk, ports["abuse-desk"], scratch / "abuse-desk.log", env))
            for n in range(args.processes if args.processes > 1 else 0):
                env = desk_env(scratch, prefix, ports[multi], n, shared)
                stack.enter_context(process(desk, ports[multi], scratch / f"abuse-desk-{n}.log", env))
            names = list(ports)
            for r in range(1, args.rounds + 1):
                for name in names[r - 1 :] + names[: r - 1]:  # each round starts with the next one: fairer order
                    rates[name].append(smtp_source(ports[name], args.messages, args.sessions, args.size))
                    if name.startswith("abuse-desk"):
                        queued = asyncio.run(_queue_depth(prefix, purge=True))
                        if queued != args.messages:
                            raise SystemExit(f"{name} answered 250 to {args.messages} but {queued} are queued")
                        time.sleep(args.settle)  # the broker's own work after a purge is not the next one's cost
                line = "  ".join(f"{name} {rates[name][-1]:.0f}/s" for name in ports)
                print(f"round {r}: {line}  (every 250 confirmed and counted in the queue)", flush=True)
        finally:
            stack.close()
            asyncio.run(_delete(prefix))
    med = {name: statistics.median(r) for name, r in rates.items()}
    print("median: " + "  ".join(f"{name} {rate:.0f}/s" for name, rate in med.items()))
    for name in [n for n in ports if n.startswith("abuse-desk")]:
        print(f"{name}: {name}/postfix {med[name] / med['postfix']:.2f}x  {name}/bare {med[name] / med['bare']:.2f}x")


if __name__ == "__main__":
    main()
