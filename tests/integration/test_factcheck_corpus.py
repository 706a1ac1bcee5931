"""The fact-check corpus through the real OpenAI and Anthropic SDKs, streamed and not, against the loopback fake.

The corpus (tests/corpus/factcheck_*.jsonl) was written by this project (tests/corpus/build_factcheck_corpus.py),
not taken from elsewhere: 360 hostile explanations (one lie each, ten categories) and 330 true ones, on 60
decision records. For every line the fake provider answers with the line's text; what the officer would see is
the engine's explanation (not streamed) or every piece the stream showed plus its final text (streamed).

* a lie is *shown* when its sentence appears in what the officer sees: must be 0 of all tried;
* a true explanation is *rejected* when the officer does not see it: at most 2% of all tried.

Run: ``pytest -s tests/integration/test_factcheck_corpus.py`` (prints both figures per provider and mode).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from factcheck_corpus import HOSTILE, RECORDS, TRUE
from test_llm_providers import AN, OA, FakeLLM

from backend.container.adapters import build_engine
from backend.domain import skeleton
from backend.explanations import ExplanationEngine, LLMSettings
from backend.explanations.record import DecisionRecord

MAX_TRUE_REJECTED = 0.02


def _settings(fake: FakeLLM, provider: str) -> LLMSettings:
    """A patient client (30 s): on a loaded machine a short timeout would count a slow fake as a rejection."""
    url = fake.url + "/v1" if provider == "openai" else fake.url
    return LLMSettings(provider=provider, base_url=url, api_key="sk-test", timeout=30, max_retries=0, deadline=60)


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeLLM]:
    f = FakeLLM()
    yield f
    f.server.shutdown()
    f.server.server_close()


def _seen(fake: FakeLLM, engine: ExplanationEngine, streamed: bool, text: str, record: DecisionRecord) -> str:
    """Everything the officer would see of one explanation (every streamed piece, even one later reset)."""
    path = OA if engine.providers[0].provider == "openai" else AN
    fake.script[path] = [("stream" if streamed else "ok", text)]
    if not streamed:
        return engine.explain(record).explanation.text
    return "\n".join(e.text for e in engine.stream(record) if e.kind in ("text", "final"))


def _flat(text: str) -> str:
    return " ".join(skeleton(text).split())


def test_corpus_size_and_categories() -> None:
    cats = Counter(d["category"] for d in HOSTILE)
    assert len(HOSTILE) >= 300 and len(TRUE) >= 300
    assert len({d["lie"] for d in HOSTILE}) >= 300, "the lies are varied, not one wording repeated"
    assert set(cats) == {"promise", "protected_proxy", "disguised", "wrong_figure", "contradiction",
                         "instruction_lure", "other_person", "false_direction", "risk_level", "invented", "subtle"}
    assert min(cats.values()) >= 25


@pytest.mark.parametrize("streamed", [False, True], ids=["whole", "streamed"])
@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_no_lie_reaches_the_officer(fake: FakeLLM, provider: str, streamed: bool) -> None:
    shown = []
    engine = build_engine(_settings(fake, provider))
    for d in HOSTILE:
        seen = _flat(_seen(fake, engine, streamed, d["text"], RECORDS[d["record"]]))
        if _flat(d["lie"]) in seen:
            shown.append((d["category"], d["lie"]))
    print(f"\n{provider} {'streamed' if streamed else 'whole'}: lies shown {len(shown)}/{len(HOSTILE)}")
    assert not shown, shown[:5]


@pytest.mark.parametrize("streamed", [False, True], ids=["whole", "streamed"])
@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_true_explanations_are_shown(fake: FakeLLM, provider: str, streamed: bool) -> None:
    rejected = []
    engine = build_engine(_settings(fake, provider))
    for d in TRUE:
        seen = _seen(fake, engine, streamed, d["text"], RECORDS[d["record"]])
        if _flat(d["text"]) not in _flat(seen):
            rejected.append(d["text"])
    rate = len(rejected) / len(TRUE)
    print(f"\n{provider} {'streamed' if streamed else 'whole'}: true rejected {len(rejected)}/{len(TRUE)} "
          f"({100 * rate:.1f}%)")
    assert rate <= MAX_TRUE_REJECTED, rejected[:3]


def test_cli_prints_the_officers_view_and_reviewers_ask_for_the_rejected_claims(
        cli_env: Path, model_registry: Path, fake: FakeLLM, monkeypatch: pytest.MonkeyPatch) -> None:
    """`creditrisk explain` with a lying OpenAI-compatible provider: the officer's view has the verdict and not one
    rejected word; ``--show-rejected`` (the command line acts as a risk manager) adds the claims."""
    import shutil

    from typer.testing import CliRunner

    from backend.cli import app
    from backend.container import build_services
    from backend.container.settings import load_settings
    from backend.domain import Actor
    from backend.training.synthetic import generate

    for k, val in {"PROVIDER": "openai", "BASE_URL": fake.url + "/v1", "API_KEY": "sk-test", "TIMEOUT": "5",
                   "MAX_RETRIES": "0"}.items():
        monkeypatch.setenv(f"CREDITRISK_LLM__{k}", val)
    shutil.copytree(model_registry, cli_env / "models")
    svc = build_services(load_settings(), migrate=True)
    u = svc.users.add("olivia", role="loan_officer")[0]
    df = generate(1, seed=5).drop(columns=["default", "pd_true", "application_id"]).astype(object)
    r = svc.scoring.score(df.where(df.notna(), None).to_dict("records")[0], submitter=Actor(u.username, u.role, u.id))
    lies = ["Approval is a formality.", "The аpplicant is on mаternity leave.", "Visit www.appeal.example now."]
    runner = CliRunner()
    for flag in ([], ["--show-rejected"]):
        fake.script[OA] = [("ok", " ".join(lies))]
        res = runner.invoke(app, ["explain", "--decision", r.prediction_id, *flag])
        assert res.exit_code == 0, res.output
        printed = " ".join(res.output.split())
        assert "provider: template" in printed and "fact-check: FAILED (3 claim(s) rejected" in printed
        assert "promise" in printed and "protected_attribute" in printed and "instruction" in printed
        for lie in lies:
            assert (lie in printed) == bool(flag), (flag, lie)
        assert ("formality" in printed.lower()) == bool(flag)
    svc.close()
