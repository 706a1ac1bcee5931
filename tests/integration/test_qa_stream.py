"""The decision conversation streamed (``WorkspaceService.ask_stream``), over the real openai and anthropic SDKs
against the loopback fake (tests/qa_fake_llm.py) serving server-sent events: tool calls whose id, name and
arguments arrive in pieces across chunks, text a few characters at a time, a lie in the third sentence, a
provider that drops the connection mid-answer, an unknown tool. Only sentences that passed the check are
ever yielded; a failure withdraws them (``reset``, saying which engine answers instead) and the offline
engine answers; the stored exchange and its audit row are those of the unstreamed ``ask``."""

from __future__ import annotations

from qa_fake_llm import last_tool_text
from sqlalchemy import func, select

from backend.domain import Actor
from backend.explanations.factcheck import sentences
from backend.platform.db.tables_book import QAExchange
from backend.training.synthetic import generate

QUESTION = "What if their income were $80,000?"
LIE = "With an $80,000 income the applicant will be approved, with a probability of default of 1.2%."
RESCORE = ("rescore", {"changes": {"annual_income": 80000}})
RECOMMENDS = {"deny": "The model recommends denial.", "manual_review": "The model recommends a manual review."}
SAME = ("answer", "intent", "engine", "tool_calls", "fact_check", "refused", "refusal")


def _events(conv, question=QUESTION, cid=None):
    stream = conv.ws.ask_stream(conv.pid, question, actor=conv.user, conversation_id=cid)
    events = [(e.kind, e.text) for e in stream]
    return events, stream.stored


def _rows(conv):
    with conv.svc.db.read() as s:
        return list(s.execute(select(QAExchange).order_by(QAExchange.at, QAExchange.turn)).scalars())


def _same_as_unstreamed(conv, script, streamed_row):
    """The same script answered by the unstreamed ``ask`` stores the same exchange (and the same audit payload,
    but for the conversation id)."""
    streamed_audit = conv.svc.audit.recent(1)[0]["payload"]
    conv.fake.script = list(script)
    before = len(conv.fake.requests)
    conv.ws.ask(conv.pid, QUESTION, actor=conv.user)
    plain = _rows(conv)[-1]
    for name in SAME:
        assert getattr(plain, name) == getattr(streamed_row, name), name
    assert plain.facts == streamed_row.facts
    plain_audit = conv.svc.audit.recent(1)[0]["payload"]
    assert {k: v for k, v in plain_audit.items() if k != "conversation_id"} == {
        k: v for k, v in streamed_audit.items() if k != "conversation_id"}
    assert len(conv.fake.requests) > before and not any(body.get("stream") for _, body in conv.fake.requests[before:])


def test_a_streamed_turn_with_tool_calls_yields_checked_sentences_in_order_and_stores_what_ask_stores(qa_conv):
    c = qa_conv
    assert c.ws.streams_answers
    said = RECOMMENDS[c.ws.result(c.pid, actor=c.user).recommendation]  # true of this decision
    script = [lambda b: ("tools", [RESCORE], f"{said} Let me check the record. One moment."),
              lambda b: ("text", last_tool_text(b))]
    c.fake.script = list(script)
    events, stored = _events(c)
    # round 1 streamed a preamble, then called a tool. Its first sentence passed the check and was shown; the
    # second did not (nothing more of the round is shown) but a tool round's text is not the answer, so that
    # is no fallback (as unstreamed, where it is never checked); what was shown of it is withdrawn
    assert events[:2] == [("text", said), ("reset", "")]
    answer = [t for k, t in events[2:] if k == "text"]
    assert [k for k, _ in events[2:]] == ["text"] * len(answer) + ["final"]
    said_ = [t for t in answer if t.strip()]  # line breaks come as they are, so the screen keeps the lines
    assert len(said_) >= 2 and all(len(sentences(t)) == 1 for t in said_)  # one checked sentence at a time
    assert "".join(answer).strip() == stored.text == events[-1][1] == last_tool_text(c.fake.requests[1][1])
    assert stored.engine == c.label and stored.fact_check["passed"] and stored.fact_check["quoted"] >= 2
    # the call's id, name and arguments were joined from deltas cut across chunks
    assert stored.tool_calls == [{"name": "rescore", "arguments": {"changes": {"annual_income": 80000}},
                                  "result": stored.tool_calls[0]["result"]}]
    assert all(body.get("stream") is True for _, body in c.fake.requests)
    assert len(c.fake.requests) == 2 and "tools" in c.fake.requests[1][1]
    _same_as_unstreamed(c, script, _rows(c)[-1])


def test_a_lie_in_the_third_sentence_shows_the_two_checked_ones_then_the_offline_answer(qa_conv):
    c = qa_conv

    def liar(body):
        first, second, *rest = sentences(last_tool_text(body))
        return ("text", " ".join([first, second, LIE, *rest]))

    script = [lambda b: ("tools", [RESCORE]), liar]
    c.fake.script = list(script)
    events, stored = _events(c)
    kinds = [k for k, _ in events]
    assert kinds == ["text", "text", "reset", "final"], events
    assert LIE not in "".join(t for _, t in events)
    assert events[0][1].startswith("Hypothetical, if verified") and events[1][1].strip()
    assert events[2][1] == stored.engine and "fact-check failed" in stored.engine
    assert stored.engine.startswith(f"offline (fallback from {c.label}: ")
    assert events[3][1] == stored.text and LIE not in stored.text
    assert stored.text.startswith("Hypothetical, if verified: annual gross income $80,000.")
    row = _rows(c)[-1]
    assert row.fact_check["passed"] is False and row.fact_check["failures"]
    _same_as_unstreamed(c, script, row)


def test_a_provider_that_dies_mid_stream_falls_back_after_its_checked_sentences(qa_conv):
    c = qa_conv

    def dying(body):
        first, second, *_ = sentences(last_tool_text(body))
        return ("die", f"{first} {second} The applicant's income of $80,0")

    c.fake.script = [lambda b: ("tools", [RESCORE]), dying]
    events, stored = _events(c)
    kinds = [k for k, _ in events]
    assert kinds[-2:] == ["reset", "final"] and set(kinds[:-2]) == {"text"} and kinds.count("text") == 2, events
    assert "provider error (" in stored.engine and stored.engine.startswith(f"offline (fallback from {c.label}")
    assert events[-2][1] == stored.engine and events[-1][1] == stored.text
    assert "$80,0 " not in stored.text and not stored.text.endswith("$80,0")
    assert _rows(c)[-1].answer == stored.text


def test_an_unknown_tool_or_malformed_arguments_in_a_streamed_round_fall_back(qa_conv):
    c = qa_conv
    said = RECOMMENDS[c.ws.result(c.pid, actor=c.user).recommendation]
    for call, preamble in [(("approve_the_loan", {}), f"{said} One moment."),
                           (("rescore", '{"changes": {"annual_income": 8'), "")]:
        script = [lambda b, call=call, preamble=preamble: ("tools", [call], preamble)]
        c.fake.script = list(script)
        events, stored = _events(c)
        assert "bad tool call" in stored.engine and stored.engine.startswith(f"offline (fallback from {c.label}")
        assert events[-1] == ("final", stored.text) and "approve_the_loan" not in stored.text
        # whatever preamble was shown is withdrawn before the offline answer replaces it
        shown = [t for k, t in events if k == "text"]
        assert shown == ([said] if preamble else []) and ("reset" in [k for k, _ in events]) == bool(preamble)
        if preamble or c.provider == "openai":  # (the unstreamed Anthropic fake sends malformed input as an object)
            _same_as_unstreamed(c, script, _rows(c)[-1])


def test_an_abandoned_stream_stores_nothing(qa_conv):
    c = qa_conv
    c.fake.script = [lambda b: ("tools", [RESCORE]), lambda b: ("text", last_tool_text(b))]
    stream = c.ws.ask_stream(c.pid, QUESTION, actor=c.user)
    it = iter(stream)
    assert next(it).kind == "text"
    it.close()  # the officer left the page mid-answer
    assert stream.stored is None
    with c.svc.db.read() as s:
        assert s.execute(select(func.count()).select_from(QAExchange)).scalar_one() == 0


def test_the_offline_engine_is_not_streamed(scoring_services):
    """No LLM configured (the default): one final event, the offline answer, stored as ``ask`` stores it."""
    svc = scoring_services
    assert not svc.workspace.streams_answers
    u = svc.users.add("oona", role="loan_officer")[0]
    app = generate(1, seed=5).drop(columns=["default", "pd_true", "application_id"]).astype(object)
    r = svc.scoring.score(app.where(app.notna(), None).to_dict("records")[0], submitter=Actor(u.username, u.role, u.id))
    stream = svc.workspace.ask_stream(r.prediction_id, "why was this decided?", actor=u)
    events = [(e.kind, e.text) for e in stream]
    assert stream.stored is not None and events == [("final", stream.stored.text)]
    assert stream.stored.engine == "offline" and stream.stored.text
    assert svc.workspace.history(r.prediction_id, actor=u)[-1].text == stream.stored.text


def test_cli_ask_prints_the_streamed_sentences_and_withdraws_a_fallback(cli_env, model_registry, tool_llm,
                                                                         monkeypatch):
    import shutil

    from typer.testing import CliRunner

    from backend.cli import app
    from backend.container import build_services
    from backend.container.settings import load_settings

    shutil.copytree(model_registry, cli_env / "models")
    for k, v in {"PROVIDER": "openai", "BASE_URL": tool_llm.url + "/v1", "API_KEY": "sk-test", "MAX_RETRIES": "0",
                 "TIMEOUT": "5"}.items():
        monkeypatch.setenv(f"CREDITRISK_LLM__{k}", v)
    svc = build_services(load_settings(), migrate=True)
    u = svc.users.add("olivia", role="loan_officer")[0]
    apps = generate(30, seed=21).drop(columns=["default", "pd_true", "application_id"]).astype(object)
    r = next(x for x in (svc.scoring.score(a, submitter=Actor(u.username, u.role, u.id))
                         for a in apps.where(apps.notna(), None).to_dict("records")) if x.recommendation != "approve")
    runner = CliRunner()
    told: list[str] = []

    def quote(body):
        told.append(last_tool_text(body))
        return ("text", told[-1])

    tool_llm.script = [lambda b: ("tools", [RESCORE]), quote]
    res = runner.invoke(app, ["ask", "--decision", r.prediction_id, QUESTION])
    assert res.exit_code == 0, res.output
    assert res.output.count(sentences(told[-1])[0]) == 1  # printed once, as it came
    assert "answered by: openai:gpt-4o; fact-check: passed" in res.output and "[withdrawn" not in res.output

    def liar(body):
        first, second, *rest = sentences(last_tool_text(body))
        return ("text", " ".join([first, second, LIE, *rest]))

    tool_llm.script = [lambda b: ("tools", [RESCORE]), liar]
    res = runner.invoke(app, ["ask", "--decision", r.prediction_id, QUESTION])
    assert res.exit_code == 0, res.output
    assert LIE not in res.output and "[withdrawn: answered by offline (fallback from openai:gpt-4o: fact-check" \
        in res.output, res.output
    assert res.output.index("[withdrawn") < res.output.rindex("Hypothetical, if verified: annual gross income")
    assert all(body.get("stream") for _, body in tool_llm.requests)
    svc.close()


def test_two_tool_calls_in_one_streamed_round_are_told_apart(qa_conv):
    """Each call's arguments arrive in pieces under its own index; neither leaks into the other."""
    c = qa_conv
    script = [lambda b: ("tools", [("policy", {}), RESCORE]), lambda b: ("text", last_tool_text(b))]
    c.fake.script = list(script)
    events, stored = _events(c)
    assert stored.engine == c.label and events[-1] == ("final", stored.text)
    assert [(t["name"], t["arguments"]) for t in stored.tool_calls] == [("policy", {}), RESCORE]
    _same_as_unstreamed(c, script, _rows(c)[-1])
