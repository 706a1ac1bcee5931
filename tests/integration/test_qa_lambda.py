"""The decision conversation with ``CREDITRISK_LLM__PROVIDER=lambda``: the service's Q&A calls the function
through the real boto3 client against the loopback Lambda Invoke fake (test_lambda_explainer.FakeLambda, which
runs the real ``explain_lambda.handler`` in-process), and the function asks its own provider, the real openai
or anthropic SDK against the loopback tool-calling fake (tests/qa_fake_llm.py). The function carries only the
LLM round: every tool runs in the service, against its database, and every sentence is checked there. A lie,
a failing or garbled function and a malformed event all end with the offline engine answering, saying why.
Dummy AWS credentials; nothing leaves 127.0.0.1."""

from __future__ import annotations

import json
import os
import shutil
import threading
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from qa_fake_llm import last_tool_text
from sqlalchemy import select
from test_lambda_explainer import FN, FakeLambda

from backend.container import build_services
from backend.container.settings import load_settings
from backend.domain import Actor
from backend.explanations import LambdaExplainer, LLMProviderSettings, ProviderError, cost_usd
from backend.explanations.config import DEFAULT_LLM_PRICES
from backend.explanations.providers import BAD_RESPONSE, RATE_LIMITED, SERVER_ERROR, TIMEOUT
from backend.explanations.qa_llm import SYSTEM
from backend.explanations.qa_tools import TOOLS, ToolBox
from backend.platform.db.tables_book import LLMUsageRow, QAExchange
from backend.serving import explain_lambda as lambda_handler
from backend.serving.explain_lambda import NO_TOOL_CALLING
from backend.training.synthetic import generate

MODELS = {"openai": "gpt-4o", "anthropic": "claude-sonnet-4-5"}
LABEL = f"lambda:{FN}"
QUESTION = "What if their income were $80,000?"
LIE = "With an $80,000 income the applicant will be approved, with a probability of default of 1.2%."
RESCORE = ("rescore", {"changes": {"annual_income": 80000}})
OFFLINE_START = "Hypothetical, if verified: annual gross income $80,000."


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    """Dummy credentials, no AWS config files or instance metadata, no CREDITRISK_LLM__* leaking in."""
    for k in [k for k in os.environ if k.startswith(("AWS_", "CREDITRISK_LLM__"))]:
        if k != "AWS_CA_BUNDLE":
            monkeypatch.delenv(k)
    for k, v in {"AWS_ACCESS_KEY_ID": "AKIDLOOPBACKTEST", "AWS_SECRET_ACCESS_KEY": "loopback-test-secret",
                 "AWS_DEFAULT_REGION": "eu-central-1", "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
                 "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
                 "AWS_EC2_METADATA_DISABLED": "true"}.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setattr(lambda_handler, "_ENGINE", None)  # a cold container


@pytest.fixture
def fake_lambda() -> Iterator[FakeLambda]:
    f = FakeLambda()
    yield f
    f.server.shutdown()
    f.server.server_close()


def _function_env(monkeypatch: pytest.MonkeyPatch, provider: str, url: str) -> None:
    """The function's own environment (read at its cold start, after the service was built)."""
    env = {"PROVIDER": provider, "BASE_URL": url + ("/v1" if provider == "openai" else ""), "API_KEY": "sk-test",
           "TIMEOUT": "5", "MAX_RETRIES": "0", "MAX_TOKENS": "400"}
    for k, v in env.items():
        monkeypatch.setenv(f"CREDITRISK_LLM__{k}", v)


def _conv(tmp_path: Any, db: Any, clock: Any, model_registry: Any, tool_llm: Any,
          fake_lambda: FakeLambda, monkeypatch: pytest.MonkeyPatch, provider: str) -> SimpleNamespace:
    root = tmp_path / "models"
    shutil.copytree(model_registry, root)
    s = load_settings(data_dir=tmp_path, auth={"bcrypt_rounds": 4}, model={"registry_dir": root},
                      llm={"provider": "lambda", "model": FN, "base_url": fake_lambda.url, "timeout": 10,
                           "max_retries": 0})
    svc = build_services(s, db=db, clock=clock)
    _function_env(monkeypatch, provider, tool_llm.url)
    u = svc.users.add("olivia", role="loan_officer")[0]
    df = generate(40, seed=21).drop(columns=["default", "pd_true", "application_id"]).astype(object)
    actor = Actor(u.username, u.role, u.id)
    rows = df.where(df.notna(), None).to_dict("records")
    r = next(x for x in (svc.scoring.score(a, submitter=actor) for a in rows) if x.recommendation != "approve")
    return SimpleNamespace(svc=svc, ws=svc.workspace, pid=r.prediction_id, user=u, fake=tool_llm, lam=fake_lambda,
                           provider=provider)


@pytest.fixture(params=["openai", "anthropic"])
def lconv(request, tmp_path, db, clock, model_registry, tool_llm, fake_lambda, monkeypatch) -> SimpleNamespace:
    return _conv(tmp_path, db, clock, model_registry, tool_llm, fake_lambda, monkeypatch, request.param)


@pytest.fixture
def oconv(tmp_path, db, clock, model_registry, tool_llm, fake_lambda, monkeypatch) -> SimpleNamespace:
    """The function's own provider is OpenAI."""
    return _conv(tmp_path, db, clock, model_registry, tool_llm, fake_lambda, monkeypatch, "openai")


def _events(c: SimpleNamespace) -> list[dict[str, Any]]:
    return [json.loads(r.body) for r in c.lam.requests]


def test_through_the_function_a_question_is_answered_with_tools_run_here_and_every_sentence_checked(
        lconv: SimpleNamespace, monkeypatch: pytest.MonkeyPatch) -> None:
    c = lconv
    threads: list[str] = []
    real_call = ToolBox.call

    def spy(self: ToolBox, name: str, raw: Any) -> dict[str, Any]:
        threads.append(threading.current_thread().name)
        return real_call(self, name, raw)

    monkeypatch.setattr(ToolBox, "call", spy)
    assert c.ws.streams_answers is False  # RequestResponse does not stream: the unstreamed path answers
    c.fake.script = [lambda b: ("tools", [RESCORE]), lambda b: ("text", last_tool_text(b))]
    a = c.ws.ask(c.pid, QUESTION, actor=c.user)
    assert a.engine == LABEL, (a.engine, a.fact_check)
    assert a.fact_check["checked"] and a.fact_check["passed"] and a.fact_check["quoted"] >= 2
    assert "Hypothetical, if verified" in a.text
    assert [(t["name"], t["arguments"]) for t in a.tool_calls] == [("rescore", {"changes": {"annual_income": 80000}})]
    assert a.tool_calls[0]["result"]["text"] == a.text
    # the tool ran in the service's thread, never in the function (the fake Lambda's handler threads)
    assert threads == [threading.main_thread().name]
    # two LLM rounds, each one invocation: the second carries the service's tool result to the function
    first, second = _events(c)
    assert set(first) == {"qa"} and first["qa"]["system"] == SYSTEM and first["qa"]["tools"] == json.loads(
        json.dumps(TOOLS))
    assert first["qa"]["messages"] == [{"role": "user", "text": QUESTION}]
    assistant, tool = second["qa"]["messages"][1:]
    assert assistant["role"] == "assistant" and assistant["calls"][0][1] == "rescore"
    assert json.loads(assistant["calls"][0][2]) == {"changes": {"annual_income": 80000}}
    assert tool["role"] == "tool" and tool["id"] == assistant["calls"][0][0]
    assert json.loads(tool["content"])["text"] == a.text
    assert len(c.fake.requests) == 2 and all(not body.get("stream") for _, body in c.fake.requests)
    with c.svc.db.read() as s:
        row = s.execute(select(QAExchange)).scalar_one()
        usage = list(s.execute(select(LLMUsageRow).where(LLMUsageRow.purpose == "qa")).scalars())
    assert row.engine == LABEL and row.answer == a.text and row.tool_calls[0]["name"] == "rescore"
    assert [(u.provider, u.model, u.input_tokens, u.output_tokens) for u in usage] == [("lambda", FN, 700, 60)] * 2
    price = cost_usd(DEFAULT_LLM_PRICES, MODELS[c.provider], 700, 60)  # priced by the function, for its model
    assert price and all(u.cost_usd == pytest.approx(price) for u in usage) and usage[-1].fact_check_ok is True
    assert c.svc.audit.recent(1)[0]["payload"]["engine"] == LABEL
    # the follow-up carries the conversation through the function too
    c.fake.script = [lambda b: ("tools", [("decision_record", {})]), lambda b: ("text", last_tool_text(b))]
    b = c.ws.ask(c.pid, "and why was it decided that way?", actor=c.user, conversation_id=a.conversation_id)
    assert b.engine == LABEL and b.conversation_id == a.conversation_id
    assert _events(c)[2]["qa"]["messages"][:2] == [{"role": "user", "text": QUESTION},
                                                   {"role": "assistant", "text": a.text, "calls": []}]


def test_the_streamed_entry_point_takes_the_unstreamed_path(oconv: SimpleNamespace) -> None:
    c = oconv
    c.fake.script = [lambda b: ("tools", [RESCORE]), lambda b: ("text", last_tool_text(b))]
    stream = c.ws.ask_stream(c.pid, QUESTION, actor=c.user)
    events = [(e.kind, e.text) for e in stream]
    assert [k for k, _ in events] == ["final"] and stream.stored is not None
    assert stream.stored.engine == LABEL and events[0][1] == stream.stored.text


@pytest.mark.parametrize(("script", "why"), [
    ([lambda b: ("text", LIE)], "fact-check failed"),
    ([lambda b: ("tools", [RESCORE]), lambda b: ("text", last_tool_text(b) + " " + LIE)], "fact-check failed"),
    ([lambda b: ("tools", [("approve_the_loan", {})])], "bad tool call"),
    ([lambda b: ("tools", [("rescore", "{not json")])], "bad tool call"),
    ([lambda b: ("text", "")], "empty answer"),
    ([lambda b: ("status", 500)], "provider error (server_error)"),  # the function's own LLM call failed
])
def test_a_lie_or_a_bad_round_inside_the_function_falls_back_to_the_offline_engine(
        oconv: SimpleNamespace, script: list[Any], why: str) -> None:
    c = oconv
    c.fake.script = list(script)
    a = c.ws.ask(c.pid, QUESTION, actor=c.user)
    assert a.engine.startswith(f"offline (fallback from {LABEL}: ") and why in a.engine, a.engine
    assert LIE not in a.text and "approve_the_loan" not in a.text and a.text.startswith(OFFLINE_START)
    with c.svc.db.read() as s:
        row = s.execute(select(QAExchange)).scalar_one()
    assert row.answer == a.text and row.engine == a.engine
    assert len(c.lam.requests) == len(c.fake.requests) == len(script)  # one invocation per LLM round


@pytest.mark.parametrize(("action", "why"), [
    (("crash", ("Runtime.ExitError", "out of memory")), "provider error (server_error)"),
    (("crash", ("Sandbox.Timedout", "Task timed out after 30.00 seconds")), "provider error (timeout)"),
    (("status", (429, "TooManyRequestsException")), "provider error (rate_limited)"),
    (("reply", b"<html>502 Bad Gateway</html>"), "provider error (bad_response)"),
    (("reply", {"ok": True, "calls": []}), "provider error (bad_response)"),
    (("reply", {"ok": True, "text": "", "calls": [{"id": "c1", "name": "rescore"}]}), "provider error (bad_response)"),
    (("reply", {"ok": True, "text": "", "calls": "rescore"}), "provider error (bad_response)"),
    (("reply", {"ok": True, "text": LIE, "calls": [], "usage": [{"input_tokens": -5}]}),
     "provider error (bad_response)"),
    (("reply", {"ok": False, "error": {"kind": "bad_request", "message": "qa.messages: ..."}}),
     "provider error (bad_response)"),
    (("reply", {"ok": True, "text": LIE, "calls": []}), "fact-check failed"),  # an unchecked function: checked here
    (("reply", {"ok": True, "text": "", "calls": [{"id": "c1", "name": "drop_table", "arguments": "{}"}]}),
     "bad tool call"),
])
def test_a_failing_or_garbled_function_falls_back_to_the_offline_engine(
        oconv: SimpleNamespace, action: tuple[str, Any], why: str) -> None:
    c = oconv
    c.lam.on(action)
    a = c.ws.ask(c.pid, QUESTION, actor=c.user)
    assert a.engine.startswith(f"offline (fallback from {LABEL}: ") and why in a.engine, a.engine
    assert a.text.startswith(OFFLINE_START) and LIE not in a.text and c.fake.requests == []
    assert len(c.lam.requests) == 1  # max_retries=0


def test_a_function_whose_provider_is_the_template_refuses_and_the_offline_engine_answers(
        oconv: SimpleNamespace, monkeypatch: pytest.MonkeyPatch) -> None:
    c = oconv
    monkeypatch.setenv("CREDITRISK_LLM__PROVIDER", "template")
    a = c.ws.ask(c.pid, QUESTION, actor=c.user)
    assert a.engine == f"offline (fallback from {LABEL}: provider error (server_error))"
    reply = lambda_handler.handler({"qa": _events(c)[0]["qa"]}, None)
    assert reply == {"ok": False, "error": {"kind": "config", "message": NO_TOOL_CALLING}}


def test_a_malformed_qa_event_over_the_wire_gets_the_functions_refusal(fake_lambda: FakeLambda, tool_llm: Any,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    _function_env(monkeypatch, "openai", tool_llm.url)
    lam = LambdaExplainer(LLMProviderSettings(provider="lambda", model=FN, base_url=fake_lambda.url, timeout=10,
                                              max_retries=0))
    secret = "078-05-1120"
    bad = {"qa": {"system": SYSTEM, "messages": [{"role": "wizard", "text": secret}], "tools": TOOLS}}
    resp = lam.client.invoke(FunctionName=FN, InvocationType="RequestResponse", Payload=json.dumps(bad).encode())
    reply = json.loads(resp["Payload"].read())
    assert resp["StatusCode"] == 200 and "FunctionError" not in resp
    assert reply == {"ok": False, "error": {"kind": "bad_request",
                                            "message": "qa.messages[0].role: must be user, assistant or tool"}}
    assert secret not in json.dumps(reply) and tool_llm.requests == []
    # the adapter's own call with a transcript the function refuses: a ProviderError the Q&A falls back on
    with pytest.raises(ProviderError) as exc:
        lam.chat_tools(SYSTEM, [{"role": "assistant", "text": "hi", "calls": []}], TOOLS)
    assert exc.value.kind == BAD_RESPONSE and "bad_request" in str(exc.value) and "last message" in str(exc.value)
    assert tool_llm.requests == []


@pytest.mark.parametrize(("provider_kind", "kind"), [(TIMEOUT, TIMEOUT), (RATE_LIMITED, RATE_LIMITED),
                                                     ("exploded", SERVER_ERROR), (None, SERVER_ERROR)])
def test_the_functions_provider_failure_keeps_its_kind(fake_lambda: FakeLambda, provider_kind: Any,
                                                       kind: str) -> None:
    fake_lambda.on(("reply", {"ok": False, "error": {"kind": "provider", "message": "x",
                                                     "provider_kind": provider_kind}}))
    lam = LambdaExplainer(LLMProviderSettings(provider="lambda", model=FN, base_url=fake_lambda.url, max_retries=0))
    with pytest.raises(ProviderError) as exc:
        lam.chat_tools(SYSTEM, [{"role": "user", "text": QUESTION}], TOOLS)
    assert exc.value.kind == kind


def test_cli_ask_with_the_lambda_provider_prints_the_whole_checked_answer(
        cli_env: Any, model_registry: Any, tool_llm: Any, fake_lambda: FakeLambda,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from backend.cli import app
    from backend.container.adapters import build_engine
    from backend.explanations import LLMSettings

    shutil.copytree(model_registry, cli_env / "models")
    for k, v in {"PROVIDER": "lambda", "MODEL": FN, "BASE_URL": fake_lambda.url, "TIMEOUT": "10",
                 "MAX_RETRIES": "0"}.items():
        monkeypatch.setenv(f"CREDITRISK_LLM__{k}", v)
    # the function runs in this process, whose environment says lambda (it would refuse): a warm container
    # whose own environment chose OpenAI
    monkeypatch.setattr(lambda_handler, "_ENGINE", build_engine(LLMSettings(
        provider="openai", base_url=tool_llm.url + "/v1", api_key="sk-test", timeout=5, max_retries=0)))
    svc = build_services(load_settings(), migrate=True)
    u = svc.users.add("olivia", role="loan_officer")[0]
    apps = generate(30, seed=21).drop(columns=["default", "pd_true", "application_id"]).astype(object)
    r = next(x for x in (svc.scoring.score(a, submitter=Actor(u.username, u.role, u.id))
                         for a in apps.where(apps.notna(), None).to_dict("records")) if x.recommendation != "approve")
    told: list[str] = []

    def quote(body: dict[str, Any]) -> tuple[str, str]:
        told.append(last_tool_text(body))
        return ("text", told[-1])

    tool_llm.script = [lambda b: ("tools", [RESCORE]), quote]
    res = CliRunner().invoke(app, ["ask", "--decision", r.prediction_id, QUESTION])
    assert res.exit_code == 0, res.output
    assert told and told[-1].split(".")[0] in res.output
    assert f"answered by: {LABEL}; fact-check: passed" in res.output and "[withdrawn" not in res.output
    assert len(fake_lambda.requests) == 2 and not any(body.get("stream") for _, body in tool_llm.requests)
    svc.close()
