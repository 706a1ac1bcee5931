"""One email rule (:func:`backend.compliance.valid_email`, the maintained email-validator) for the API, the
console's scoring service and the CLI."""

from __future__ import annotations

import json
import shutil

import pytest
from api_helpers import assert_problem
from typer.testing import CliRunner

from backend.compliance import MSG_EMAIL, valid_email
from backend.domain import Actor, ApplicationInvalid

REFUSED = [
    "<script>alert(1)</script>@x.com",
    "<script>alert(document.cookie)</script>@example.org",
    '"><img src=x onerror=alert(1)>@x.com',
    "javascript:alert(1)@x.com",
    "Jane Doe <jane@example.com>",
    '"a b"@example.com',
    "a@[127.0.0.1]",
    "a@localhost",
    "a..b@example.com",
    ".a@example.com",
    "a.@example.com",
    "a@example..com",
    "a@example.com.",
    "a@-example.com",
    "a@example-.com",
    "a@example.com,b@example.com",
    "a@example.com; DROP TABLE users",
    "a b@example.com",
    "a\u202e@example.com",
    "a\u200b@example.com",
    "@example.com",
    "a@",
    "a@@example.com",
    "x" * 65 + "@example.com",
    "a@" + "b" * 64 + ".com",
]
ACCEPTED = ["a@b.co", "jane.doe+loans@example.org", "o'brien@example.ie", "ñandú@example.es",
            "first_last-1@sub.example.co.uk"]


@pytest.mark.parametrize("email", REFUSED)
def test_the_rule_refuses(email):
    assert valid_email(email) is None


@pytest.mark.parametrize("email", ACCEPTED)
def test_the_rule_accepts(email):
    assert valid_email(email) is not None


def _app(sample, email):
    return dict(sample[0], applicant={"name": "Jane Doe", "email": email})


@pytest.mark.parametrize("email", REFUSED[:6])
def test_the_api_refuses_without_echo(api_sqlite, sample, email):
    res = api_sqlite.client.post("/v1/score", json=_app(sample, email), headers=api_sqlite.auth("olivia"))
    body = assert_problem(res, 422, not_echoed=(email, "script", "onerror"))
    assert [e["loc"][-2:] for e in body["errors"]] == [["applicant", "email"]]


def test_the_api_accepts_a_valid_email(api_sqlite, sample):
    res = api_sqlite.client.post("/v1/score", json=_app(sample, ACCEPTED[1]), headers=api_sqlite.auth("olivia"))
    assert res.status_code == 200, res.text


@pytest.mark.parametrize("email", REFUSED[:6])
def test_the_console_scoring_service_refuses(sqlite_services, sample, email):
    with pytest.raises(ApplicationInvalid) as exc:
        sqlite_services.scoring.score(_app(sample, email), submitter=Actor("olivia", "loan_officer"))
    assert [(e.field, e.message) for e in exc.value.errors] == [("applicant.email", MSG_EMAIL)]
    assert email not in str(exc.value)


def test_the_cli_refuses(cli_env, model_registry, sample):
    from backend.cli import app

    shutil.copytree(model_registry, cli_env / "models")
    path = cli_env / "apps.jsonl"
    path.write_text(json.dumps(_app(sample, REFUSED[0])) + "\n")
    res = CliRunner().invoke(app, ["score", "--input", str(path)])
    assert res.exit_code != 0 and "applicant.email" in res.output and "script" not in res.output
