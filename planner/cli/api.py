"""``planner serve`` and ``planner keys``: run the API and manage its keys."""

from __future__ import annotations

from typing import Annotated

import typer

from planner.cli.common import console, fail

keys_app = typer.Typer(help="API keys: create (printed once), list, revoke. Stored hashed.", no_args_is_help=True)


@keys_app.command("create")
def keys_create(role: Annotated[str, typer.Option(help="viewer (reads), planner (also writes and runs) or admin "
                                                       "(all organisations, library scenarios)")],
                label: Annotated[str, typer.Option(help="who the key is for")] = "",
                org: Annotated[str, typer.Option(help="the organisation (or team) the key belongs to: it sees "
                                                      "and cancels only that organisation's scenarios and runs")]
                = "default") -> None:
    """Create a key; the key itself is the last word of the output and is not stored."""
    from api.db import check_org, create_key

    try:
        org = check_org(org)
    except ValueError as exc:
        raise fail(f"--{exc}") from None
    try:
        kid, key = create_key(role, label, org=org)
    except ValueError as exc:
        raise fail(f"--{exc}") from None
    typer.echo(f"created {role} key {kid} for organisation {org!r}; keep it now, it is not shown again: {key}")


@keys_app.command("list")
def keys_list() -> None:
    """Keys with role, organisation, label, creation and revocation dates (never the keys)."""
    from api.db import DEFAULT_ORG, list_keys

    for k in list_keys():
        state = f"revoked {k.revoked:%Y-%m-%d}" if k.revoked else "active"
        console.print(f"{k.id}  {k.role:8s} {state:18s} {k.created:%Y-%m-%d %H:%M}  {k.org or DEFAULT_ORG}  "
                      f"{k.label}", highlight=False)


@keys_app.command("revoke")
def keys_revoke(key_id: Annotated[str, typer.Argument(help="key id from `planner keys list`")]) -> None:
    """Revoke a key by id."""
    from api.db import revoke_key

    if not revoke_key(key_id):
        raise fail(f"no active key with id {key_id!r}")
    console.print(f"revoked {key_id}")


def serve(host: Annotated[str, typer.Option(help="interface")] = "127.0.0.1",
          port: Annotated[int, typer.Option(help="port")] = 8000) -> None:
    """Start the API with uvicorn (database: DATABASE_URL, or the SQLite file PLANNER_DB). A bad setting
    (PLANNER_MAX_RUNS=abc, …) stops it before it starts: one line naming the setting, exit code 1."""
    from api.limits import SettingsError, load_limits
    from planner.deadline import allowance_s

    try:
        load_limits()
        allowance_s()
    except (SettingsError, ValueError) as exc:
        raise fail(str(exc)) from None
    import uvicorn

    from api.app import create_app

    uvicorn.run(create_app(), host=host, port=port)
