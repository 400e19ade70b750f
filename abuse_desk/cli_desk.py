"""The desk's subcommands: `cases list|show|<action>`, `dead list|replay|discard`, `operators add|list|disable`."""

from __future__ import annotations

import getpass
import os
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

operators_app = typer.Typer(help="Named operators of the web page (ops, admin).", no_args_is_help=True)
err = Console(stderr=True)
ACTION_HELP = {
    "resolve": "The customer fixed it: no suspension at the deadline.",
    "confirm": "Facts verified by a human: apply the policy.",
    "suspend-now": "Suspend at once (e.g. a live phishing kit), skipping the warning.",
    "reject": "Not founded: close it (the complainant is told).",
    "lift": "Support lifts the suspension (the customer is told); a pending contest is recorded as reversed.",
    "uphold": "A contest of the case was reviewed and the measure stands.",
}


def _console() -> Console:
    """stdout; when it is not a terminal (a pipe, cron), wide enough that no table cell is ever cut."""
    console = Console()
    return console if console.is_terminal else Console(width=10_000)


def _cli() -> Any:
    from abuse_desk import cli

    return cli


def _actor(operator: str | None) -> str:
    return operator or os.environ.get("ABUSE_DESK_OPERATOR") or f"cli:{getpass.getuser()}"


def _short(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else "-"


def _query_error(exc: Exception) -> typer.Exit:
    err.print(f"[bold red]error:[/] {exc}")
    return typer.Exit(2)


def cases_list(
    as_json: Annotated[bool, typer.Option("--json")] = False,
    status: Annotated[str | None, typer.Option("--status")] = None,
    sla: Annotated[
        str | None, typer.Option("--sla", help="answered, answered-on-time, answered-late, not-applicable, ok, ...")
    ] = None,
    search: Annotated[
        str | None, typer.Option("--search", help="IP or CIDR, domain, URL, customer id or name, case id, text")
    ] = None,
    sort: Annotated[str, typer.Option("--sort", help="a field (id, status, opened_at, ...); '-field' reverses")] = (
        "-opened_at"
    ),
    limit: Annotated[int, typer.Option("--limit")] = 1000,
    offset: Annotated[int, typer.Option("--offset")] = 0,
    attention: Annotated[str | None, typer.Option("--attention", help="any, review, sla-breached, ...")] = None,
) -> None:
    """Cases, newest first (filters, search, sort, pages)."""
    from abuse_desk import ops
    from policy.queries import QueryError

    cli = _cli()
    try:
        rows = cli._run(
            ops.list_cases(
                cli._settings(), status, sla, search=search, sort=sort, limit=limit, offset=offset, attention=attention
            )
        )
    except QueryError as exc:
        raise _query_error(exc) from exc
    if as_json:
        sys.stdout.write(cli._dump(rows) + "\n")
        return
    table = Table("id", "status", "category", "customer", "reports", "opened", "SLA due", "deadline", "indicators")
    table.columns[0].no_wrap = True
    for r in rows:
        shown = r["indicators"]
        table.add_row(
            r["id"],
            r["status"],
            r["category"],
            (r["customer_id"] or "-") + (f" ({r['customer_name']})" if r.get("customer_name") else ""),
            str(r["report_count"]),
            _short(r["opened_at"]),
            f"{_short(r['sla_due_at'])} ({r['sla_state']})",
            _short(r["deadline_at"]),
            " ".join([*shown["ips"], *shown["domains"], *shown["urls"]][:4]),
        )
    _console().print(table)


def cases_show(case_id: str, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """One case with its reports and history."""
    from abuse_desk import ops
    from policy.queries import LIST_FIELDS

    cli = _cli()
    case = cli._run(ops.show_case(cli._settings(), case_id))
    if as_json:
        sys.stdout.write(cli._dump(case) + "\n")
        return
    out = _console()
    for key in LIST_FIELDS:
        out.print(f"[bold]{key}[/]: {case.get(key)}", highlight=False)
    out.print(f"[bold]reports[/] ({len(case['reports'])}):")
    for r in case["reports"]:
        out.print(
            f"  {_short(r['received_at'])} {r['report_id']} {r['format']}/{r['category']} from {r['reporter'] or '-'}"
            f" subject={r['subject']!r} ips={r['source_ips']} domains={r['domains']} urls={r['urls']}",
            highlight=False,
        )
    out.print("[bold]history[/]:")
    for h in case["history"]:
        rules = "; ".join(f"{r['name']}: {r['reason']}" for r in h["rules"])
        actor = f" by {h['detail']['actor']}" if isinstance(h.get("detail"), dict) and h["detail"].get("actor") else ""
        out.print(f"  {_short(h['at'])} {h['kind']} {h['outcome'] or ''}{actor} {rules}", highlight=False)


def _case_action(action: str) -> Any:
    def command(
        case_id: str,
        reason: Annotated[str, typer.Option("--reason", help="note for the audit trail (not sent to the customer)")],
        customer_text: Annotated[
            str, typer.Option("--customer-text", help="text for the customer's mail and statement of reasons")
        ] = "",
        operator: Annotated[
            str | None, typer.Option("--operator", help="who acts (default: ABUSE_DESK_OPERATOR or cli:$USER)")
        ] = None,
    ) -> None:
        from abuse_desk import ops
        from policy import ops as policy_ops

        if action not in policy_ops.ALLOWED:
            err.print(f"[bold red]{action}[/] is not part of this release yet")
            raise typer.Exit(2)
        cli = _cli()
        settings, actor = cli._settings(), _actor(operator)
        case = cli._run(ops.case_action(settings, case_id, action, reason, actor=actor, customer_text=customer_text))
        _console().print(f"case {case['id']} is now {case['status']}")

    command.__doc__ = ACTION_HELP[action]
    return command


def dead_list(
    queue: Annotated[str | None, typer.Argument(help="a work queue; default: every queue")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    every: Annotated[bool, typer.Option("--all", help="also the discarded ones")] = False,
) -> None:
    """Dead letters kept for ops, with the handler's error (reading them redelivers nothing)."""
    from abuse_desk import ops

    cli = _cli()
    letters = cli._run(ops.dead_list(cli._settings(), queue, every=every))
    if as_json:
        sys.stdout.write(cli._dump(letters) + "\n")
        return
    out = _console()
    for d in letters:
        out.print(
            f"#{d['id']} {d['queue']} {_short(d['died_at'])} {d['type'] or '-'} [{d['state']}] tries={d['attempts']}"
            f" case={d['case_id'] or '-'} report={d['report_id'] or '-'} why={d['reason']}: {d['error'] or '-'}",
            highlight=False,
            markup=False,
        )
    waiting = sum(1 for d in letters if d["state"] == "dead")
    out.print(f"{len(letters)} dead letter(s), {waiting} waiting" + (f" in {queue}" if queue else ""), highlight=False)


def dead_replay(
    queue: Annotated[str | None, typer.Argument(help="a work queue; default: every queue")] = None,
    ids: Annotated[list[int] | None, typer.Option("--id", help="only this dead letter (repeatable)")] = None,
    operator: Annotated[str | None, typer.Option("--operator")] = None,
) -> None:
    """Put waiting dead letters back to work (after the fix); one that dies again shows as died-again."""
    from abuse_desk import ops
    from abuse_desk.cli_operate import progress_bar

    cli = _cli()
    with progress_bar(f"replaying {queue or 'dead letters'}") as progress:
        done = cli._run(ops.dead_replay(cli._settings(), queue, progress, ids=ids or None, actor=_actor(operator)))
    _console().print(
        f"replayed {len(done)} message(s) into {queue or 'their queues'}; `abuse-desk dead list` shows any that died"
        " again",
        highlight=False,
    )


def dead_discard(
    queue: Annotated[str | None, typer.Argument(help="a work queue")] = None,
    ids: Annotated[list[int] | None, typer.Option("--id", help="only this dead letter (repeatable)")] = None,
    every: Annotated[bool, typer.Option("--all", help="every waiting dead letter of every queue")] = False,
    operator: Annotated[str | None, typer.Option("--operator")] = None,
) -> None:
    """Give up on waiting dead letters (kept as discarded, with who did it)."""
    from abuse_desk import ops

    if not (queue or ids or every):
        err.print("name a queue, one or more --id, or --all")
        raise typer.Exit(2)
    cli = _cli()
    count = cli._run(ops.dead_discard(cli._settings(), queue, ids=ids or None, actor=_actor(operator)))
    _console().print(f"discarded {count} dead letter(s)")


@operators_app.command("add")
def operators_add(
    name: str,
    role: Annotated[str, typer.Option("--role", help="ops or admin")] = "ops",
    password_file: Annotated[
        Path | None, typer.Option("--password-file", help="read the password from this file ('-': stdin)")
    ] = None,
    token: Annotated[bool, typer.Option("--token", help="generate a personal token (printed once) instead")] = False,
) -> None:
    """Add an operator with a password (prompted, or --password-file) or a generated personal token."""
    from abuse_desk import operators, ops

    if token:
        secret, kind = operators.new_token(), "token"
    elif password_file is not None:
        text = sys.stdin.read() if str(password_file) == "-" else password_file.read_text(encoding="utf-8")
        secret, kind = text.rstrip("\r\n"), "password"
    elif not sys.stdin.isatty():
        secret, kind = sys.stdin.readline().rstrip("\r\n"), "password"
    else:
        secret, kind = typer.prompt("password", hide_input=True, confirmation_prompt=True), "password"
    cli = _cli()
    try:
        cli._run(ops.operator_add(cli._settings(), name, role, secret, kind))
    except operators.OperatorError as exc:
        raise _query_error(exc) from exc
    out = _console()
    out.print(f"operator {name} ({role}) added", highlight=False)
    if kind == "token":
        out.print(f"personal token (shown once, keep it now): {secret}", highlight=False, markup=False)


@operators_app.command("list")
def operators_list(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Every operator: name, role, how they sign in, state."""
    from abuse_desk import ops

    cli = _cli()
    found = cli._run(ops.operator_list(cli._settings()))
    if as_json:
        sys.stdout.write(cli._dump(found) + "\n")
        return
    table = Table("name", "role", "signs in with", "created", "last sign-in", "state")
    for o in found:
        state = "disabled" if o["disabled"] else "active"
        when = _short(o["created_at"]), _short(o["last_sign_in_at"])
        table.add_row(o["name"], o["role"], o["secret_kind"], *when, state)
    _console().print(table)


@operators_app.command("disable")
def operators_disable(name: str) -> None:
    """Disable an operator (their sessions end at once)."""
    from abuse_desk import operators, ops

    cli = _cli()
    try:
        cli._run(ops.operator_disable(cli._settings(), name))
    except operators.OperatorError as exc:
        raise _query_error(exc) from exc
    _console().print(f"operator {name} disabled", highlight=False)


def register(app: typer.Typer, cases_app: typer.Typer, dead_app: typer.Typer) -> None:
    """Add the desk's subcommands to the `abuse-desk` command."""
    cases_app.command("list")(cases_list)
    cases_app.command("show")(cases_show)
    for action in ACTION_HELP:
        cases_app.command(action)(_case_action(action))
    dead_app.command("list")(dead_list)
    dead_app.command("replay")(dead_replay)
    dead_app.command("discard")(dead_discard)
    app.add_typer(operators_app, name="operators")
