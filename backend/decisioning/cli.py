"""`creditrisk explain`: the explanation an officer would see for one scored decision."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    pass

def _print_stream(stream: Any) -> Any:
    """Print each checked sentence as it comes; what a fallback withdraws is marked, and the stored answer is
    printed again after it whenever it differs from what was printed. Returns the stored answer."""
    from backend.platform.cli import out

    printed = ""
    for event in stream:
        if event.kind == "text":
            printed += event.text
            out.print(event.text, end="", markup=False, highlight=False)
        elif event.kind == "reset" and printed.strip():
            out.print("")
            out.print("[withdrawn" + (f": answered by {event.text}]" if event.text else ": it came before a tool call]"),
                      markup=False, highlight=False)
            printed = ""
        elif event.kind == "final" and event.text.strip() != printed.strip():
            out.print(("\n" if printed else "") + event.text, end="", markup=False, highlight=False)
    out.print("")
    return stream.stored


def register(app: typer.Typer) -> None:
    from backend.decisioning import outcomes_cli

    outcomes_cli.register(app)
    from backend.platform.cli import PROOF_HELP, cli_actor, fail, out, services

    @app.command()
    def explain(
        decision: Annotated[str, typer.Option("--decision", help="The prediction id of the scored decision")],
        show_rejected: Annotated[bool, typer.Option(
            "--show-rejected", help="Also print the claims the fact-check rejected (roles that review model "
                                    "behaviour: risk manager, ML engineer, admin)")] = False,
    ) -> None:
        """Print the explanation an officer would see, which provider wrote it and the fact-check verdict.

        Runs the configured explanation engine (CREDITRISK_LLM__PROVIDER; the offline template by
        default) and records the explanation and an audit row exactly as the console does. By default
        only the verdict (how many claims failed, of which kind) is printed, never the rejected text.
        """
        from backend.domain import DecisionError, Perm, allowed
        from backend.explanations import verdict

        svc = services()
        actor = cli_actor(svc)
        if not actor.role:
            fail(f"reading a decision needs a proven user: {PROOF_HELP}")
        if show_rejected and not allowed(actor.role, Perm.REVIEW_MODEL_OUTPUT):
            fail(f"--show-rejected is for roles that review model behaviour; {actor.role!r} is not one")
        try:
            stored = svc.workspace.explain(decision, actor=actor)
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
            v = verdict(stored.failures)
            kinds = ", ".join(f"{n} {k}" for k, n in sorted(v["failed_by_kind"].items()))
            out.print(f"fact-check: FAILED ({v['claims_failed']} claim(s) rejected: {kinds}; the template is shown)",
                      markup=False, highlight=False)
            if show_rejected:
                for f in stored.failures:
                    out.print(f"  - {f.get('kind')}: {f.get('detail')} [{f.get('claim')}]", markup=False,
                              highlight=False)
        out.print(f"explanation id: {stored.id}", markup=False, highlight=False)

    @app.command()
    def ask(
        question: Annotated[str, typer.Argument(help="The question, in quotes")],
        decision: Annotated[str, typer.Option("--decision", help="The prediction id of the scored decision")],
        conversation: Annotated[str | None, typer.Option(
            "--conversation", help="Continue this conversation (its id is printed with every answer)")] = None,
        as_json: Annotated[bool, typer.Option("--json", help="Print the answer as JSON")] = False,
    ) -> None:
        """Ask a question about one decision (why, what if, what would it take, compare, define).

        Answers with the configured LLM through tools over the decision's own record (when one is
        configured and the check passes) or the offline engine, and stores the exchange and its audit
        row exactly as the console does. Without --conversation a new conversation starts; pass the
        printed conversation id to ask a follow-up ("and with a 48-month term as well?").
        """
        import json

        from backend.domain import DecisionError

        svc = services()
        actor = cli_actor(svc)
        if not actor.role:
            fail(f"asking about a decision needs a proven user: {PROOF_HELP}")
        streamed = not as_json and svc.workspace.streams_answers
        try:
            if streamed:  # the LLM's checked sentences as they come (the offline engine is not streamed)
                stream = svc.workspace.ask_stream(decision, question, actor=actor, conversation_id=conversation)
            else:
                stored = svc.workspace.ask(decision, question, actor=actor, conversation_id=conversation)
        except DecisionError as exc:
            fail(str(exc))
            raise  # unreachable
        if streamed:
            stored = _print_stream(stream)
        if as_json:
            typer.echo(json.dumps(stored.as_json(), ensure_ascii=False))
            return
        if not streamed:
            out.print(stored.text, markup=False, highlight=False)
        out.print("")
        verdict = stored.fact_check
        checked = ("fact-check: passed" if verdict.get("passed") else "fact-check: FAILED (the offline engine answered)"
                   ) if verdict.get("checked") else "fact-check: not needed (offline engine, grounded)"
        out.print(f"intent: {stored.intent}" + (f" ({stored.refusal})" if stored.refusal else "")
                  + f"; answered by: {stored.engine}; {checked}", markup=False, highlight=False)
        out.print(f"conversation: {stored.conversation_id}", markup=False, highlight=False)
