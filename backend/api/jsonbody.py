"""A strict JSON reader for request bodies (FastAPI's default accepts NaN, Infinity and duplicate keys).

Refused, each with a 422 problem that never repeats the body: invalid UTF-8, syntax errors,
``NaN``/``Infinity``/``-Infinity`` literals, numbers that overflow a double (``1e309``), integers
with more than :data:`MAX_INT_DIGITS` digits, duplicate keys, NUL characters, lone surrogates,
strings longer than the configured maximum and nesting deeper than :data:`MAX_DEPTH`. A body
sent with another content type than JSON to a JSON operation is refused with 415.
"""

from __future__ import annotations

import email.message
import json
import math
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute

from backend.api.problems import Problem

MAX_DEPTH = 32
MAX_INT_DIGITS = 30
BAD_JSON = "invalid-json"
MSG_UTF8 = "The body is not valid UTF-8."
MSG_SYNTAX = "The body is not valid JSON (line {line}, column {col})."
MSG_CONSTANT = "NaN and Infinity are not JSON numbers; send a finite number or leave the field out."
MSG_OVERFLOW = "A number is too large (it overflows a 64-bit float)."
MSG_BIG_INT = f"An integer has more than {MAX_INT_DIGITS} digits."
MSG_DUPLICATE = "An object repeats a key; each key may appear once."
MSG_NUL = "A string contains a NUL character (\\u0000), which is not accepted."
MSG_SURROGATE = "A string contains a lone UTF-16 surrogate, which is not valid Unicode."
MSG_LONG = "A string is longer than {n} characters."
MSG_DEEP = f"The body is nested more than {MAX_DEPTH} levels deep."
MSG_MEDIA = "This operation takes application/json."


class _Refused(ValueError):
    pass


def _constant(_name: str) -> Any:
    raise _Refused(MSG_CONSTANT)


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _Refused(MSG_OVERFLOW)
    return value


def _int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise _Refused(MSG_BIG_INT)
    return int(text)


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise _Refused(MSG_DUPLICATE)
        out[k] = v
    return out


def _check_strings(value: Any, max_len: int, depth: int = 0) -> None:
    if depth > MAX_DEPTH:
        raise _Refused(MSG_DEEP)
    if isinstance(value, str):
        if len(value) > max_len:
            raise _Refused(MSG_LONG.format(n=max_len))
        if "\x00" in value:
            raise _Refused(MSG_NUL)
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise _Refused(MSG_SURROGATE) from None
    elif isinstance(value, dict):
        for k, v in value.items():
            _check_strings(k, max_len, depth + 1)
            _check_strings(v, max_len, depth + 1)
    elif isinstance(value, list):
        for v in value:
            _check_strings(v, max_len, depth + 1)


def strict_loads(body: bytes, *, max_string_length: int) -> Any:
    """Parse ``body`` as strict JSON or raise a 422 :class:`Problem` (whose detail never quotes it)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise Problem(422, BAD_JSON, "Malformed JSON body", MSG_UTF8) from None
    try:
        value = json.loads(text, parse_constant=_constant, parse_float=_float, parse_int=_int,
                           object_pairs_hook=_pairs)
        _check_strings(value, max_string_length)
    except _Refused as exc:
        raise Problem(422, BAD_JSON, "Malformed JSON body", str(exc)) from None
    except json.JSONDecodeError as exc:
        raise Problem(422, BAD_JSON, "Malformed JSON body", MSG_SYNTAX.format(line=exc.lineno, col=exc.colno)) from None
    except RecursionError:
        raise Problem(422, BAD_JSON, "Malformed JSON body", MSG_DEEP) from None
    except ValueError:  # e.g. an integer beyond Python's digit limit
        raise Problem(422, BAD_JSON, "Malformed JSON body", MSG_BIG_INT) from None
    return value


def is_json(content_type: str | None) -> bool:
    if not content_type:
        return False
    msg = email.message.Message()
    msg["content-type"] = content_type
    sub = msg.get_content_subtype()
    return msg.get_content_maintype() == "application" and (sub == "json" or sub.endswith("+json"))


class StrictJSONRequest(Request):
    max_string_length = 10_000

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = strict_loads(await self.body(), max_string_length=self.max_string_length)
        return self._json


class StrictJSONRoute(APIRoute):
    """Routes whose JSON bodies are read by :func:`strict_loads`; other media types get 415."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        original = super().get_route_handler()
        takes_json = self.body_field is not None

        async def handler(request: Request) -> Response:
            strict = StrictJSONRequest(request.scope, request.receive)
            api = getattr(request.app.state, "api", None)
            if api is not None:
                strict.max_string_length = api.settings.api.max_string_length
            if takes_json and await strict.body() and not is_json(request.headers.get("content-type")):
                raise Problem(415, "unsupported-media-type", "Unsupported media type", MSG_MEDIA)
            return await original(strict)

        return handler
