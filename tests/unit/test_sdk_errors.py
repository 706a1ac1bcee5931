"""The one SDK error classifier (backend/platform/sdk_errors.py) on the exceptions the real SDKs raise
(botocore, openai, anthropic, built here exactly as the SDKs build them), and what each adapter makes
of it: the explanation engine's ProviderError kinds and the SageMaker model server's kinds."""

from __future__ import annotations

from typing import Any

import anthropic
import httpx
import openai
import pytest
from botocore import exceptions as be

from backend.explanations.providers import (
    BAD_RESPONSE,
    CONNECTION,
    RATE_LIMITED,
    SDK_MISSING,
    SERVER_ERROR,
    TIMEOUT,
    ProviderError,
    classify_error,
)
from backend.models.adapters import sagemaker_runtime as sm
from backend.platform import sdk_errors as se

REQ = httpx.Request("POST", "http://127.0.0.1:9/v1/chat/completions")


def _client_error(code: str, status: int, message: str = "boom", op: str = "InvokeEndpoint",
                  **extra: Any) -> be.ClientError:
    return be.ClientError({"Error": {"Code": code, "Message": message},
                           "ResponseMetadata": {"HTTPStatusCode": status}, **extra}, op)


def _openai(cls: type, status: int) -> Exception:
    return cls("nope", response=httpx.Response(status, request=REQ), body=None)


# exception, platform kind, explanation kind, SageMaker kind, label
CASES: list[tuple[BaseException, str, str, str, str]] = [
    (ImportError("provider 'openai' needs the 'openai' package"), se.SDK_MISSING, SDK_MISSING, sm.CONFIG, "ImportError"),
    # botocore, before the service answered
    (be.ReadTimeoutError(endpoint_url="http://x"), se.TIMEOUT, TIMEOUT, sm.TIMEOUT, "ReadTimeoutError"),
    (be.ConnectTimeoutError(endpoint_url="http://x"), se.TIMEOUT, TIMEOUT, sm.TIMEOUT, "ConnectTimeoutError"),
    (be.EndpointConnectionError(endpoint_url="http://x"), se.CONNECTION, CONNECTION, sm.CONNECTION,
     "EndpointConnectionError"),
    (be.ConnectionClosedError(endpoint_url="http://x"), se.CONNECTION, CONNECTION, sm.CONNECTION,
     "ConnectionClosedError"),
    (be.NoCredentialsError(), se.CREDENTIALS, CONNECTION, sm.CONFIG, "NoCredentialsError"),
    (be.NoRegionError(), se.CREDENTIALS, CONNECTION, sm.CONFIG, "NoRegionError"),
    (be.PartialCredentialsError(provider="env", cred_var="AWS_SECRET_ACCESS_KEY"), se.CREDENTIALS, CONNECTION,
     sm.CONFIG, "PartialCredentialsError"),
    # botocore, the service answered
    (_client_error("ThrottlingException", 400), se.THROTTLED, RATE_LIMITED, sm.THROTTLED, "ThrottlingException"),
    (_client_error("TooManyRequestsException", 429, op="Invoke"), se.THROTTLED, RATE_LIMITED, sm.THROTTLED,
     "TooManyRequestsException"),
    (_client_error("", 429), se.THROTTLED, RATE_LIMITED, sm.THROTTLED, "HTTP 429"),
    (_client_error("ServiceException", 500, op="Invoke"), se.SERVER_ERROR, SERVER_ERROR, sm.SERVER, "ServiceException"),
    (_client_error("ResourceNotReadyException", 502, op="Invoke"), se.SERVER_ERROR, SERVER_ERROR, sm.SERVER,
     "ResourceNotReadyException"),
    (_client_error("ModelNotReadyException", 400), se.SERVER_ERROR, SERVER_ERROR, sm.SERVER, "ModelNotReadyException"),
    (_client_error("InternalFailure", 400), se.SERVER_ERROR, SERVER_ERROR, sm.SERVER, "InternalFailure"),
    (_client_error("ModelError", 424, OriginalStatusCode=503), se.SERVER_ERROR, SERVER_ERROR, sm.SERVER, "ModelError"),
    (_client_error("ModelError", 424, OriginalStatusCode=400), se.REFUSED, BAD_RESPONSE, sm.REFUSED, "ModelError"),
    (_client_error("ModelError", 500), se.REFUSED, BAD_RESPONSE, sm.REFUSED, "ModelError"),  # no original: 4xx-like
    (_client_error("ValidationException", 400), se.REFUSED, BAD_RESPONSE, sm.REFUSED, "ValidationException"),
    (_client_error("AccessDeniedException", 403, op="Invoke"), se.REFUSED, BAD_RESPONSE, sm.REFUSED,
     "AccessDeniedException"),
    (_client_error("", 404), se.REFUSED, BAD_RESPONSE, sm.REFUSED, "HTTP 404"),
    # openai
    (openai.APITimeoutError(request=REQ), se.TIMEOUT, TIMEOUT, sm.TIMEOUT, "APITimeoutError"),
    (openai.APIConnectionError(request=REQ), se.CONNECTION, CONNECTION, sm.CONNECTION, "APIConnectionError"),
    (_openai(openai.RateLimitError, 429), se.THROTTLED, RATE_LIMITED, sm.THROTTLED, "HTTP 429"),
    (_openai(openai.InternalServerError, 500), se.SERVER_ERROR, SERVER_ERROR, sm.SERVER, "HTTP 500"),
    (_openai(openai.AuthenticationError, 401), se.REFUSED, BAD_RESPONSE, sm.REFUSED, "HTTP 401"),
    (_openai(openai.BadRequestError, 400), se.REFUSED, BAD_RESPONSE, sm.REFUSED, "HTTP 400"),
    # anthropic
    (anthropic.APITimeoutError(request=REQ), se.TIMEOUT, TIMEOUT, sm.TIMEOUT, "APITimeoutError"),
    (anthropic.APIConnectionError(request=REQ), se.CONNECTION, CONNECTION, sm.CONNECTION, "APIConnectionError"),
    (_openai(anthropic.APIStatusError, 529), se.SERVER_ERROR, SERVER_ERROR, sm.SERVER, "HTTP 529"),  # overloaded
    (_openai(anthropic.RateLimitError, 429), se.THROTTLED, RATE_LIMITED, sm.THROTTLED, "HTTP 429"),
    (_openai(anthropic.PermissionDeniedError, 403), se.REFUSED, BAD_RESPONSE, sm.REFUSED, "HTTP 403"),
    # neither
    (ValueError("Expecting value: line 1 column 1"), se.UNKNOWN, BAD_RESPONSE, sm.BAD_RESPONSE, "ValueError"),
    (KeyError("Body"), se.UNKNOWN, BAD_RESPONSE, sm.BAD_RESPONSE, "KeyError"),
]
IDS = [f"{type(c[0]).__name__}-{c[4]}" for c in CASES]


@pytest.mark.parametrize(("exc", "kind", "provider_kind", "sagemaker_kind", "label"), CASES, ids=IDS)
def test_every_sdk_failure_has_one_kind(exc: BaseException, kind: str, provider_kind: str, sagemaker_kind: str,
                                        label: str) -> None:
    f = se.classify_sdk_error(exc)
    assert f.kind == kind and f.kind in se.KINDS
    assert f.label == label and f.detail == f"{label}: {exc}"
    assert f.retryable is (kind in (se.TIMEOUT, se.THROTTLED, se.SERVER_ERROR, se.CONNECTION))


@pytest.mark.parametrize(("exc", "kind", "provider_kind", "sagemaker_kind", "label"), CASES, ids=IDS)
def test_the_explanation_engine_and_the_model_server_read_it_the_same_way(
        exc: BaseException, kind: str, provider_kind: str, sagemaker_kind: str, label: str) -> None:
    p = classify_error(exc)  # type: ignore[arg-type]
    assert isinstance(p, ProviderError) and p.kind == provider_kind
    assert str(exc) in str(p)
    s = sm.classify(exc)  # type: ignore[arg-type]
    assert isinstance(s, sm.SageMakerError) and s.kind == sagemaker_kind
    assert str(s) == f"{label}: {exc}"
    assert s.retryable is (sagemaker_kind in sm.RETRYABLE)


def test_the_service_answer_is_kept() -> None:
    exc = _client_error("ValidationException", 400, message="Could not find endpoint \"creditrisk\".",
                        op="DescribeEndpoint")
    f = se.classify_sdk_error(exc)
    assert (f.status, f.code, f.service_message) == (400, "ValidationException", 'Could not find endpoint "creditrisk".')


def test_the_missing_package_message_is_ours() -> None:
    p = classify_error(ImportError("provider 'anthropic' needs the 'anthropic' package (pip install anthropic)"))
    assert p.kind == SDK_MISSING and str(p) == "sdk_missing: provider 'anthropic' needs the 'anthropic' package " \
                                                "(pip install anthropic)"


def test_already_classified_errors_pass_through() -> None:
    p = ProviderError(TIMEOUT, "x")
    assert classify_error(p) is p
    s = sm.SageMakerError(sm.BAD_RESPONSE, "y")
    assert sm.classify(s) is s


@pytest.mark.parametrize("response", [
    {},  # a ClientError with nothing in it
    {"Error": {"Code": None, "Message": None}, "ResponseMetadata": {"HTTPStatusCode": "500"}},  # wrong types
    {"Error": {}, "ResponseMetadata": {}},
    {"Error": {"Code": ""}, "ResponseMetadata": {"HTTPStatusCode": True}},
])
def test_malformed_service_answers_are_refusals_not_crashes(response: dict[str, Any]) -> None:
    f = se.classify_sdk_error(be.ClientError(response, "InvokeEndpoint"))
    assert f.kind == se.REFUSED and f.status is None and f.code == "" and f.label == "ClientError"


def test_a_response_botocore_would_not_build_is_still_classified() -> None:
    class Weird(Exception):
        response = {"Error": "not a mapping", "ResponseMetadata": None}

    f = se.classify_sdk_error(Weird("x"))
    assert f.kind == se.REFUSED and f.label == "Weird"


def test_a_boolean_status_is_not_a_status() -> None:
    class Odd(Exception):
        status_code = True

    assert se.classify_sdk_error(Odd("x")).kind == se.UNKNOWN
