"""Fixtures of the decision conversation's tests over the real LLM SDKs (test_qa_llm_tools, test_qa_stream)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from types import SimpleNamespace

import pytest
from qa_fake_llm import FakeToolLLM

from backend.container import build_services
from backend.container.settings import load_settings
from backend.domain import Actor
from backend.training.synthetic import generate

MODELS = {"openai": "gpt-4o", "anthropic": "claude-sonnet-4-5"}


@pytest.fixture
def tool_llm() -> Iterator[FakeToolLLM]:
    f = FakeToolLLM()
    yield f
    f.close()


@pytest.fixture(params=["openai", "anthropic"])
def qa_conv(request, tmp_path, db, clock, model_registry, tool_llm):
    provider = request.param
    root = tmp_path / "models"
    shutil.copytree(model_registry, root)
    url = tool_llm.url + ("/v1" if provider == "openai" else "")
    s = load_settings(data_dir=tmp_path, auth={"bcrypt_rounds": 4}, model={"registry_dir": root},
                      llm={"provider": provider, "base_url": url, "api_key": "sk-test", "timeout": 5,
                           "max_retries": 0, "max_tokens": 400})
    svc = build_services(s, db=db, clock=clock)
    u = svc.users.add("olivia", role="loan_officer")[0]
    df = generate(40, seed=21).drop(columns=["default", "pd_true", "application_id"]).astype(object)
    rows = df.where(df.notna(), None).to_dict("records")
    actor = Actor(u.username, u.role, u.id)
    r = next(x for x in (svc.scoring.score(a, submitter=actor) for a in rows) if x.recommendation != "approve")
    return SimpleNamespace(svc=svc, ws=svc.workspace, pid=r.prediction_id, user=u, fake=tool_llm,
                           label=f"{provider}:{MODELS[provider]}", provider=provider)
