"""Operating a running desk: /metrics and /healthz per process, `doctor`, `health`, long operations with progress."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.messages import SendNotification
from tests.dkimkey import sign, toml_trust
from tests.e2e.harness import SCRIPT, Desk

REPORTER = "reporter.example"
INVENTORY = {
    "customers": [
        {
            "id": "M1",
            "name": "Mona Metrics",
            "email": "mona@customer-m1.example",
            "phone": "+33 1 00 00 00 11",
            "address": "11 rue du Bac, Paris",
            "country": "FR",
            "language": "en",
            "created_at": "2020-01-01",
            "identity_verified": True,
        }
    ],
    "services": [{"id": "MS1", "customer_id": "M1", "kind": "web-hosting", "name": "mona-site"}],
    "resources": [{"service_id": "MS1", "type": "ip", "value": "203.0.113.70", "valid_from": "2020-01-01T00:00:00Z"}],
}


@pytest.fixture(scope="module")
def desk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Desk]:
    workdir: Path = tmp_path_factory.mktemp("operate")
    (workdir / "inventory.json").write_text(json.dumps(INVENTORY))
    (workdir / "abuse-desk.toml").write_text(toml_trust({REPORTER: "cert"}))
    d = Desk(workdir, {"ABUSE_DESK_CONFIG": str(workdir / "abuse-desk.toml"), "ABUSE_DESK_WEB_TOKEN": "t" * 32})
    d.cli("inventory", "import", "inventory.json")
    d.start()
    yield d
    d.stop()


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample of the Prometheus text format (0 when absent)."""
    for line in text.splitlines():
        series, _, value = line.rpartition(" ")
        found, _, rest = series.partition("{")
        pairs = dict(p.split("=", 1) for p in rest.rstrip("}").split(",") if p) if rest else {}
        if found == name and {k: v.strip('"') for k, v in pairs.items()} == labels:
            return float(value)
    return 0.0


def metrics(desk: Desk) -> str:
    status, text = get(f"http://{desk.env['ABUSE_DESK_METRICS_LISTEN']}/metrics")
    assert status == 200
    return text


def test_metrics_count_a_report_from_smtp_to_the_mails(desk: Desk) -> None:
    raw = sign(
        (
            f"From: Victor <victim@{REPORTER}>\r\nTo: abuse@localhost\r\nSubject: Phishing on 203.0.113.70\r\n"
            f"Message-ID: <metrics-1@{REPORTER}>\r\nDate: Sat, 28 Nov 2026 10:00:00 +0100\r\n\r\n"
            "The server at 203.0.113.70 hosts a phishing page:\r\nhttp://203.0.113.70/login.php\r\n"
        ).encode(),
        REPORTER,
    )
    desk.mail(raw, mail_from=f"victim@{REPORTER}")
    case = desk.wait_case(lambda c: c["customer_id"] == "M1" and c["status"] == "warned")
    desk.wait_mails(lambda m: m["To"] == "mona@customer-m1.example")
    deadline = time.monotonic() + 30
    while True:
        text = metrics(desk)
        if (
            sample(text, "abuse_desk_cases", status="warned") >= 1
            and sample(text, "abuse_desk_mails_total", result="sent") >= 2
        ):
            break
        assert time.monotonic() < deadline, text
        time.sleep(0.5)
    assert sample(text, "abuse_desk_smtp_reports_total", outcome="accepted") == 1
    assert sample(text, "abuse_desk_reports_parsed_total", format="freetext", category="phishing") == 1
    assert sample(text, "abuse_desk_decisions_total", outcome="warn", rule="first-complaint-warning") == 1
    assert sample(text, "abuse_desk_handler_seconds_count", queue="policy.reports", result="ok") == 1
    assert sample(text, "abuse_desk_handler_seconds_count", queue="ingest.normalize", result="ok") == 1
    assert sample(text, "abuse_desk_message_lag_seconds_count", queue="actions.notify") >= 2
    assert sample(text, "abuse_desk_component_up", component="web") == 1
    assert 'abuse_desk_queue_messages{queue="policy.reports"}' in text
    assert sample(text, "abuse_desk_sla_cases", state="breached") == 0
    assert case["id"]


def test_health_endpoint_and_command(desk: Desk) -> None:
    wanted = {"smtp", "normalize", "policy", "scheduler", "suspend", "notify", "web"}
    deadline = time.monotonic() + 30
    while True:  # the listener answers first; the other components come up right after it
        status, body = get(f"http://{desk.env['ABUSE_DESK_METRICS_LISTEN']}/healthz")
        if status == 200 and wanted <= set(json.loads(body)["components"]):
            break
        assert time.monotonic() < deadline, body
        time.sleep(0.2)
    assert json.loads(body)["ok"] is True
    assert desk.cli("health").returncode == 0
    dead = desk.cli("health", "--url", "http://127.0.0.1:9/healthz", check=False)
    assert dead.returncode == 1 and "nothing answers" in dead.stderr


def test_doctor_says_all_good_and_then_names_what_is_wrong_in_plain_words(desk: Desk, tmp_path: Path) -> None:
    ok = desk.cli("doctor")
    assert ok.returncode == 0 and "all good" in ok.stdout, ok.stdout
    (tmp_path / "not-a-dir").write_text("a file where the Maildir should be")
    broken = desk.env | {
        "ABUSE_DESK_AMQP_URL": "amqp://guest:guest@127.0.0.1:9/",
        "ABUSE_DESK_DATABASE_URL": f"sqlite:///{tmp_path}/never-migrated.db",
        "ABUSE_DESK_MAIL_OUT": str(tmp_path / "not-a-dir" / "outbox"),
    }
    result = subprocess.run(
        [SCRIPT, "doctor"], cwd=desk.workdir, env=broken, capture_output=True, text=True, timeout=60
    )
    out = result.stdout
    assert result.returncode == 1, out
    assert "cannot reach RabbitMQ at amqp://127.0.0.1:9/" in out
    assert "schema is not up to date: run `abuse-desk db upgrade`" in out
    assert "mail-out" in out and "not-a-dir" in out
    bad_config = desk.env | {"ABUSE_DESK_SMTP_LISTEN": "nowhere"}
    result = subprocess.run(
        [SCRIPT, "doctor"], cwd=desk.workdir, env=bad_config, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1 and "smtp_listen" in result.stdout and "HOST:PORT" in result.stdout


def test_serve_web_refuses_to_start_without_a_token(desk: Desk) -> None:
    env = desk.env | {"ABUSE_DESK_WEB_TOKEN": ""}
    result = subprocess.run(
        [SCRIPT, "serve", "web"], cwd=desk.workdir, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2 and "ABUSE_DESK_WEB_TOKEN" in result.stderr


def test_replay_of_many_dead_letters_shows_progress_and_moves_them_all(desk: Desk) -> None:
    import asyncio

    import aio_pika

    async def bury(n: int) -> None:
        conn = await aio_pika.connect(desk.env["ABUSE_DESK_AMQP_URL"])
        ch = await conn.channel(publisher_confirms=True)
        for i in range(n):  # notifications to an impossible address: notify turns them into action.failed
            body = SendNotification(case_id=None, kind="customer-warning", to=f"x{i}@invalid", context={}).to_bytes()
            await ch.default_exchange.publish(aio_pika.Message(body), routing_key=desk.prefix + "actions.notify.dead")
        await conn.close()

    asyncio.run(bury(1200))
    deadline = time.monotonic() + 60
    while True:  # the keeper (with the web component) moves them from the broker into the database
        listed = json.loads(desk.cli("queues", "--json").stdout)
        dead = {q["queue"]: q for q in listed}["actions.notify"]
        if dead["dead"] == 1200 and dead["dead_kept"] == 1200:
            break
        assert time.monotonic() < deadline, dead
        time.sleep(0.5)
    result = desk.cli("dead", "replay", "actions.notify")
    assert "replayed 1200 message(s)" in result.stdout
    assert "1200/1200" in result.stderr  # the rich progress bar's last state
    listed = json.loads(desk.cli("queues", "--json").stdout)
    assert {q["queue"]: q["dead_kept"] for q in listed}["actions.notify"] == 0
    states = desk.rows("SELECT state, count(*) AS n FROM dead_letters WHERE queue = 'actions.notify' GROUP BY state")
    assert {r["state"] for r in states} <= {"replayed", "died-again"}  # none left waiting; a death again is shown


def test_dead_list_three_times_redelivers_nothing_and_shows_the_error(desk: Desk) -> None:
    import asyncio

    import aio_pika

    async def poison() -> None:  # not one of our contracts: the consumer rejects it at once
        conn = await aio_pika.connect(desk.env["ABUSE_DESK_AMQP_URL"])
        ch = await conn.channel(publisher_confirms=True)
        msg = aio_pika.Message(b"{not json at all", message_id="poison-1")
        await ch.default_exchange.publish(msg, routing_key=desk.prefix + "policy.reports")
        await conn.close()

    asyncio.run(poison())
    deadline = time.monotonic() + 30
    while not json.loads(desk.cli("dead", "list", "policy.reports", "--json").stdout):
        assert time.monotonic() < deadline, "the poison message was never kept"
        time.sleep(0.3)
    seen = [
        [(d["id"], d["attempts"], d["delivery_count"], d["state"]) for d in
         json.loads(desk.cli("dead", "list", "policy.reports", "--json").stdout)]
        for _ in range(3)
    ]
    assert seen[0] == seen[1] == seen[2] and len(seen[0]) == 1
    human = desk.cli("dead", "list", "policy.reports").stdout
    assert "why=rejected" in human and ("not a valid abuse-desk message" in human or "not JSON" in human), human
    assert desk.cli("dead", "discard", "--id", str(seen[0][0][0])).stdout.startswith("discarded 1")


def test_commands_find_the_desk_from_any_folder_and_refuse_to_invent_a_database(desk: Desk, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in desk.env.items() if k not in ("ABUSE_DESK_DATABASE_URL",)} if not desk.env.get(
        "ABUSE_DESK_DATABASE_URL", ""
    ).startswith("postgresql") else dict(desk.env)
    found = subprocess.run([SCRIPT, "cases", "list", "--json"], cwd=elsewhere, env=env, capture_output=True, text=True,
                           timeout=60)
    assert found.returncode == 0, found.stderr
    assert json.loads(found.stdout) == desk.cases()  # the config file's folder is the home, not the current one
    assert not (elsewhere / "var").exists()
    if env.get("ABUSE_DESK_DATABASE_URL", "").startswith("postgresql"):
        return
    lost = {k: v for k, v in env.items() if k != "ABUSE_DESK_CONFIG"}
    result = subprocess.run([SCRIPT, "cases", "list"], cwd=elsewhere, env=lost, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 1 and "no database at" in result.stderr and "ABUSE_DESK_HOME" in result.stderr
    assert not (elsewhere / "var").exists()
    bad = subprocess.run([SCRIPT, "cases", "list", "--status", "warnd"], cwd=desk.workdir, env=desk.env,
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "one of received, monitoring" in bad.stderr


def test_inventory_import_of_100k_resources_is_batched_and_shows_progress(desk: Desk) -> None:
    services = [{"id": f"BS{i}", "customer_id": "M1", "kind": "vps", "name": f"b{i}"} for i in range(1000)]
    resources = [
        {
            "service_id": f"BS{i % 1000}",
            "type": "ip",
            "value": f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}",
            "valid_from": "2024-01-01T00:00:00Z" if i % 2 else None,
        }
        for i in range(100_000)
    ]
    (desk.workdir / "big.json").write_text(json.dumps({"customers": [], "services": services, "resources": resources}))
    started = time.monotonic()
    result = desk.cli("inventory", "import", "big.json")
    elapsed = time.monotonic() - started
    assert "100000 resources" in result.stdout and "100000/100000" in result.stderr
    assert elapsed < 90, f"100k resources took {elapsed:.0f} s"
    again = desk.cli("inventory", "import", "big.json")  # idempotent: no duplicate rows
    assert "100000 resources" in again.stdout
    count = desk.rows("SELECT count(*) AS n FROM resources WHERE service_id LIKE 'BS%'")[0]["n"]
    assert count == 100_000
