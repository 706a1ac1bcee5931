"""`creditrisk explain`: the explanation an officer would see for one scored decision."""

from __future__ import annotations

import getpass
import uuid
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from backend.services.auth import UserInfo

#: The CLI acts as a system actor with the risk manager's view (every officer's applications).
CLI_ACTOR_ID = uuid.UUID(int=0)
CLI_ROLE = "risk_manager"


def cli_actor() -> UserInfo:
    from backend.services.auth import UserInfo

    return UserInfo(CLI_ACTOR_ID, f"cli:{getpass.getuser()}"[:64], "command line", CLI_ROLE)


def register(app: typer.Typer) -> None:
    from backend.cli import fail, out, services

    @app.command()
    def explain(
        decision: Annotated[str, typer.Option("--decision", help="The prediction id of the scored decision")],
    ) -> None:
        """Print the explanation an officer would see, which provider wrote it and the fact-check verdict.

        Runs the configured explanation engine (CREDITRISK_LLM__PROVIDER; the offline template by
        default) and records the explanation and an audit row exactly as the console does.
        """
        from backend.services.override_rules import DecisionError

        svc = services()
        try:
            stored = svc.workspace.explain(decision, actor=cli_actor())
        except DecisionError as exc:
            fail(str(exc))
            raise  # unreachable
        out.print(stored.text, markup=False, highlight=False)
        out.print("")
        model = f" ({stored.model})" if stored.model else ""
        out.print(f"provider: {stored.provider}{model}" + ("  [fallback used]" if stored.fallback_used else ""),
                  markup=False, highlight=False)
        if stored.fact_check_ok:
            out.print("fact-check: passed", markup=False, highlight=False)
        else:
            out.print(f"fact-check: FAILED ({len(stored.failures)} claim(s) rejected; the template is shown)",
                      markup=False, highlight=False)
            for f in stored.failures:
                out.print(f"  - {f.get('kind')}: {f.get('detail')} [{f.get('claim')}]", markup=False,
                          highlight=False)
        out.print(f"explanation id: {stored.id}", markup=False, highlight=False)
