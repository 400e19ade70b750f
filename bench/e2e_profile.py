"""bench/e2e.py --profile: decide simple complaints in-process under cProfile, counting SQL statements per report."""

from __future__ import annotations

import asyncio
import cProfile
import pstats
import shutil
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import event

PROJECT = str(Path(__file__).resolve().parents[1])


def profile(reports: int, customers: int, batch: int, backend: str = "sqlite", plain: bool = False) -> None:
    """Parse `reports` complaints, then decide them on a fresh SQLite file (or a fresh PostgreSQL database on
    127.0.0.1:5432, dropped after): one by one (`batch` 0) with `report_arrived`, or `batch` per transaction with
    `reports_arrived`. `plain`: no cProfile, only the rate and this process's CPU per report."""
    from abuse_desk.ops import database
    from bench.e2e import REPORTER, complaint, inventory
    from core.report import AbuseReport
    from core.settings import load_settings
    from ingest.authenticate import authenticate, pinned_lookup
    from ingest.parse import parse_report
    from policy import intake
    from policy.inventory_import import import_inventory
    from tests.dkimkey import toml_trust

    scratch = Path(tempfile.mkdtemp(prefix="e2e-profile-"))
    url = f"sqlite:///{scratch}/abuse-desk.db"
    pg_name = f"abuse_desk_profile_{uuid.uuid4().hex[:10]}" if backend == "postgresql" else ""
    if pg_name:
        from sqlalchemy.engine import make_url

        from bench import bulk
        from bench.e2e import PG_URL

        asyncio.run(bulk.pg_admin(f'CREATE DATABASE "{pg_name}"'))
        url = make_url(PG_URL).set(database=pg_name).render_as_string(hide_password=False)
    try:
        (scratch / "abuse-desk.toml").write_text(toml_trust({REPORTER: "cert"}))
        settings = load_settings(
            scratch / "abuse-desk.toml",
            {
                "ABUSE_DESK_DATABASE_URL": url,
                "ABUSE_DESK_LINK_SECRET": uuid.uuid4().hex * 2,
            },
        )
        lookup = pinned_lookup(settings.trust.dns_txt, None, 3.0)
        started = time.perf_counter()
        parsed: list[AbuseReport] = []
        for k in range(reports):
            raw = complaint(k, customers, "x")
            report = parse_report(raw, report_id=f"profile-{k}")
            report.auth = authenticate(raw, lookup)
            parsed.append(AbuseReport.model_validate_json(report.model_dump_json()))
        print(f"parse + authenticate + JSON round trip: {reports / (time.perf_counter() - started):.0f} reports/s")

        async def decide() -> None:
            async with database(settings) as engine:
                async with engine.begin() as conn:
                    await import_inventory(conn, inventory(customers, False))
                statements = [0]

                def count(*_: Any) -> None:
                    statements[0] += 1

                event.listen(engine.sync_engine, "before_cursor_execute", count)
                now = datetime.now(UTC)
                profiler = cProfile.Profile()
                started, cpu = time.perf_counter(), time.process_time()
                if not plain:
                    profiler.enable()
                if batch:
                    for start in range(0, reports, batch):
                        await intake.reports_arrived(engine, parsed[start : start + batch], settings, now)
                else:
                    for report in parsed:
                        await intake.report_arrived(engine, report, settings, now)
                profiler.disable()
                elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
                how = f"{batch} per transaction" if batch else "one by one"
                print(f"decided {reports} reports {how} on {backend}: {reports / elapsed:.0f} reports/s,"
                      f" {1000 * cpu / reports:.1f} ms CPU per report in this process"
                      f"{' (under cProfile)' if not plain else ''}, {statements[0] / reports:.1f} SQL statements"
                      " per report")  # fmt: skip
                if not plain:
                    pstats.Stats(profiler).sort_stats("cumtime").print_stats(PROJECT, 45)  # the project's own code

        asyncio.run(decide())
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        if pg_name:
            asyncio.run(bulk.pg_admin(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)'))
