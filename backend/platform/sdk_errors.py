"""The one classifier of what a cloud or LLM SDK raises: botocore/boto3 (SageMaker, Lambda, S3), openai
and anthropic. It reads class names and attributes only, so it imports no SDK and also classifies
errors from a Stubber, a loopback fake or an SDK that is not installed.

* ``sdk_missing``: an ``ImportError`` (the adapter's package is not installed).
* ``timeout``: connect or read timeout (``ReadTimeoutError``, ``ConnectTimeoutError``, ``APITimeoutError``).
* the service answered with an error (botocore ``ClientError``: ``response["Error"]["Code"]`` and the
  HTTP status; openai/anthropic ``APIStatusError``: ``status_code``):
  ``throttled`` (429 or a throttling code), ``server_error`` (5xx or a server-side code; a SageMaker
  ``ModelError`` counts as the status its container answered), else ``refused`` (4xx: the same
  request would be refused again).
* ``credentials``: no credentials or no region (botocore), before any request was sent.
* ``connection``: the connection failed or dropped (``EndpointConnectionError``, ``APIConnectionError``).
* ``unknown``: anything else (a parser error, a bug).

Each adapter maps the kind to its own error type (:class:`backend.explanations.providers.ProviderError`,
:class:`backend.models.adapters.sagemaker_runtime.SageMakerError`); ``detail`` is the message they carry.
"""

from __future__ import annotations

from dataclasses import dataclass

SDK_MISSING, TIMEOUT, THROTTLED, SERVER_ERROR, REFUSED, CREDENTIALS, CONNECTION, UNKNOWN = (
    "sdk_missing", "timeout", "throttled", "server_error", "refused", "credentials", "connection", "unknown")
KINDS = (SDK_MISSING, TIMEOUT, THROTTLED, SERVER_ERROR, REFUSED, CREDENTIALS, CONNECTION, UNKNOWN)
RETRYABLE = frozenset({TIMEOUT, THROTTLED, SERVER_ERROR, CONNECTION})
THROTTLING_CODES = frozenset({"ThrottlingException", "Throttling", "TooManyRequestsException",
                              "RequestLimitExceeded"})
SERVER_CODES = frozenset({"InternalFailure", "ServiceUnavailable", "InternalDependencyException",
                          "ModelNotReadyException"})
CREDENTIAL_ERRORS = frozenset({"NoCredentialsError", "PartialCredentialsError", "NoRegionError"})


@dataclass(frozen=True)
class SdkFailure:
    kind: str  # one of KINDS
    name: str  # the exception's class name
    message: str  # str() of the exception
    status: int | None = None  # the HTTP status, when the service answered
    code: str = ""  # the service's error code (botocore), when it answered
    service_message: str = ""  # the service's own error message (botocore ``Error.Message``)

    @property
    def label(self) -> str:
        """What failed in a word: the service's error code, else its HTTP status, else the exception class."""
        if self.code:
            return self.code
        return f"HTTP {self.status}" if self.status is not None else self.name

    @property
    def detail(self) -> str:
        return f"{self.label}: {self.message}"

    @property
    def retryable(self) -> bool:
        """The same request may succeed if sent again (throttled, a server error, a timeout, a dropped connection)."""
        return self.kind in RETRYABLE


def classify_sdk_error(exc: BaseException) -> SdkFailure:
    """What ``exc`` (raised by an SDK call) means; see the module docstring."""
    name, message = type(exc).__name__, str(exc)
    if isinstance(exc, ImportError):
        return SdkFailure(SDK_MISSING, name, message)
    if "Timeout" in name:
        return SdkFailure(TIMEOUT, name, message)
    response = getattr(exc, "response", None)
    if isinstance(response, dict):  # botocore ClientError: the service answered with an error
        meta, error = response.get("ResponseMetadata"), response.get("Error")
        meta, error = meta if isinstance(meta, dict) else {}, error if isinstance(error, dict) else {}
        status = meta.get("HTTPStatusCode")
        code, said = str(error.get("Code", "") or ""), str(error.get("Message", "") or "")
        status = status if isinstance(status, int) and not isinstance(status, bool) else None
        original = response.get("OriginalStatusCode")  # ModelError: what the SageMaker container answered
        if code == "ModelError":
            server = isinstance(original, int) and original >= 500
        else:
            server = code in SERVER_CODES or (status is not None and status >= 500)
        if status == 429 or code in THROTTLING_CODES:
            kind = THROTTLED
        else:
            kind = SERVER_ERROR if server else REFUSED
        return SdkFailure(kind, name, message, status, code, said)
    status = getattr(exc, "status_code", None)  # openai / anthropic APIStatusError
    if isinstance(status, int) and not isinstance(status, bool):
        kind = THROTTLED if status == 429 else SERVER_ERROR if status >= 500 else REFUSED
        return SdkFailure(kind, name, message, status)
    if name in CREDENTIAL_ERRORS:
        return SdkFailure(CREDENTIALS, name, message)
    if "Connection" in name:
        return SdkFailure(CONNECTION, name, message)
    return SdkFailure(UNKNOWN, name, message)
