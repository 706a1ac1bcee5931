"""OAuth 2.0 access tokens for the scoring API: short-lived JWTs signed from a key ring.

* **Keys**: asymmetric only (``ES256``, P-256; or ``EdDSA``, Ed25519), each with a ``kid``. The ring's
  active key signs; every key in the ring verifies, so a rotation is: add a new key and make it
  active (new tokens), keep the old one until the tokens it signed have expired, then remove it.
  The ring comes from ``settings.api.signing_keys`` (JSON) or, outside production, from a file
  created once under ``data_dir`` with mode 0600 (:func:`load_key_ring`).
* **Claims**: ``iss``, ``aud``, ``sub`` (``user:<uuid>`` or ``client:<client id>``), ``role``,
  ``scope`` (space-separated, as in RFC 9068), ``iat``, ``nbf``, ``exp``, ``jti``; header
  ``typ: at+jwt`` and ``kid``.
* **Verification** (:meth:`TokenService.verify`) takes the algorithm from the *key*, never from the
  token: ``alg: none``, HS256 signed with the public key, an unknown ``kid``, a wrong ``typ``,
  audience or issuer, an expired or not-yet-valid token and any tampering are refused with
  :class:`TokenInvalid`. Times are checked against the service clock.
* **Scopes** map to permissions of :mod:`backend.domain.permissions`: people get what their role allows;
  machine clients what they were created with (never ``override``: a decision is a person's).
"""

from __future__ import annotations

import json
import secrets
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from jwt.algorithms import ECAlgorithm, OKPAlgorithm

from backend.domain import Perm, allowed
from backend.identity.config import ApiSettings
from backend.platform.secret_file import write_secret_file

SCOPES: dict[str, Perm] = {
    "score": Perm.SCORE,
    "decisions:read": Perm.VIEW_DECISIONS,
    "explain": Perm.VIEW_DECISIONS,
    "override": Perm.DECIDE,
}
CLIENT_SCOPES: tuple[str, ...] = ("score", "decisions:read", "explain")
ALGORITHMS = ("ES256", "EdDSA")
TOKEN_TYPE = "at+jwt"  # noqa: S105 - RFC 9068 media type
KEY_FILE = "api_signing_keys.json"
MAX_TOKEN_LENGTH = 4096
VERIFIED_CACHE_SIZE = 10_000  # verified tokens remembered per process (a few kB each)
REQUIRED_CLAIMS = ("iss", "aud", "sub", "role", "scope", "iat", "nbf", "exp", "jti")

TOKEN_INVALID = "The access token is invalid or has expired."  # noqa: S105
RING_EMPTY = "the API signing key ring is empty"
RING_MALFORMED = "CREDITRISK_API__SIGNING_KEYS is not a valid key ring (JSON with 'active' and 'keys'): {why}"
RING_PRODUCTION = ("CREDITRISK_API__SIGNING_KEYS must be set in production (a JSON key ring; "
                   "see `creditrisk api keys rotate --print`)")
KEY_UNKNOWN = "no key {kid!r} in the ring"
KEY_ACTIVE = "key {kid!r} is the active signing key; rotate first, then remove it"



class TokenSettings(Protocol):
    """What the token key ring reads from the settings: the deployment (``env``, ``data_dir``) and the ``api`` section."""

    @property
    def env(self) -> str: ...

    @property
    def data_dir(self) -> Path: ...

    @property
    def api(self) -> ApiSettings: ...


def scopes_for_role(role: str | None) -> tuple[str, ...]:
    """The scopes a person with ``role`` may hold (what the role's permissions allow)."""
    return tuple(s for s, perm in SCOPES.items() if allowed(role, perm))


class KeyRingError(ValueError):
    """The key ring cannot be built or changed; the message never contains key material."""


class TokenInvalid(Exception):
    """A token was refused. ``reason`` is for logs only; callers answer :data:`TOKEN_INVALID`."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class SigningKey:
    kid: str
    alg: str
    public: Any
    private: Any = None

    @classmethod
    def generate(cls, alg: str = "ES256", kid: str | None = None) -> SigningKey:
        if alg not in ALGORITHMS:
            raise KeyRingError(f"algorithm must be one of {', '.join(ALGORITHMS)}")
        private: Any = ec.generate_private_key(ec.SECP256R1()) if alg == "ES256" else \
            ed25519.Ed25519PrivateKey.generate()
        return cls(kid or f"k{uuid.uuid4().hex[:12]}", alg, private.public_key(), private)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SigningKey:
        kid, alg = str(d.get("kid") or ""), str(d.get("alg") or "")
        if not kid or alg not in ALGORITHMS:
            raise KeyRingError(RING_MALFORMED.format(why=f"each key needs a kid and alg in {ALGORITHMS}"))
        try:
            if d.get("private_key"):
                private = serialization.load_pem_private_key(str(d["private_key"]).encode(), password=None)
                public = private.public_key()
            else:
                private, public = None, serialization.load_pem_public_key(str(d.get("public_key", "")).encode())
        except (ValueError, TypeError) as exc:
            raise KeyRingError(RING_MALFORMED.format(why=f"key {kid!r}: unreadable PEM ({type(exc).__name__})")) from None
        ok = (isinstance(public, ec.EllipticCurvePublicKey) and public.curve.name == "secp256r1") if alg == "ES256" \
            else isinstance(public, ed25519.Ed25519PublicKey)
        if not ok:
            raise KeyRingError(RING_MALFORMED.format(why=f"key {kid!r} does not match its algorithm {alg}"))
        return cls(kid, alg, public, private)

    def to_dict(self, *, private: bool = True) -> dict[str, str]:
        out = {"kid": self.kid, "alg": self.alg}
        if private and self.private is not None:
            out["private_key"] = self.private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                            serialization.NoEncryption()).decode()
        else:
            out["public_key"] = self.public.public_bytes(serialization.Encoding.PEM,
                                                         serialization.PublicFormat.SubjectPublicKeyInfo).decode()
        return out

    def jwk(self) -> dict[str, Any]:
        algo: Any = ECAlgorithm if self.alg == "ES256" else OKPAlgorithm
        return {**algo.to_jwk(self.public, as_dict=True), "kid": self.kid, "alg": self.alg, "use": "sig"}


class KeyRing:
    def __init__(self, keys: Iterable[SigningKey], active: str) -> None:
        self.keys = {k.kid: k for k in keys}
        if not self.keys:
            raise KeyRingError(RING_EMPTY)
        if active not in self.keys or self.keys[active].private is None:
            raise KeyRingError(RING_MALFORMED.format(why="'active' must name a key of the ring with its private key"))
        self.active = active

    @classmethod
    def from_json(cls, text: str) -> KeyRing:
        try:
            data = json.loads(text)
        except ValueError:
            raise KeyRingError(RING_MALFORMED.format(why="not JSON")) from None
        if not isinstance(data, dict) or not isinstance(data.get("keys"), list):
            raise KeyRingError(RING_MALFORMED.format(why="expected an object with a 'keys' list"))
        return cls([SigningKey.from_dict(k) for k in data["keys"] if isinstance(k, dict)], str(data.get("active", "")))

    def to_json(self) -> str:
        return json.dumps({"active": self.active, "keys": [k.to_dict() for k in self.keys.values()]}, indent=1)

    @property
    def signing_key(self) -> SigningKey:
        return self.keys[self.active]

    def get(self, kid: Any) -> SigningKey | None:
        return self.keys.get(kid) if isinstance(kid, str) else None

    def jwks(self) -> dict[str, Any]:
        """The public keys as a JSON Web Key Set (for verifiers outside this service)."""
        return {"keys": [k.jwk() for k in self.keys.values()]}

    def rotated(self, alg: str = "ES256") -> KeyRing:
        new = SigningKey.generate(alg)
        return KeyRing([new, *self.keys.values()], new.kid)

    def without(self, kid: str) -> KeyRing:
        if kid not in self.keys:
            raise KeyRingError(KEY_UNKNOWN.format(kid=kid))
        if kid == self.active:
            raise KeyRingError(KEY_ACTIVE.format(kid=kid))
        return KeyRing([k for k in self.keys.values() if k.kid != kid], self.active)


def key_file(settings: TokenSettings) -> Path:
    return settings.data_dir / KEY_FILE


def write_key_file(path: Path, ring: KeyRing, *, replace: bool) -> bool:
    """Write ``ring`` with mode 0600 atomically. ``replace=False``: only if no file exists yet (False
    when another process created it first)."""
    return write_secret_file(path, ring.to_json(), replace=replace, prefix=".keys-")


def load_key_ring(settings: TokenSettings) -> KeyRing:
    """The configured ring; outside production without one, the dev ring under ``data_dir``."""
    configured = settings.api.signing_keys.get_secret_value().strip()
    if configured:
        return KeyRing.from_json(configured)
    if settings.env == "production":
        raise KeyRingError(RING_PRODUCTION)
    path = key_file(settings)
    if not path.exists():
        key = SigningKey.generate()
        write_key_file(path, KeyRing([key], key.kid), replace=False)
    return KeyRing.from_json(path.read_text())


@dataclass(frozen=True)
class Claims:
    sub: str
    role: str
    scopes: frozenset[str]
    jti: str
    issued_at: int
    expires_at: int

    @property
    def kind(self) -> str:
        return self.sub.split(":", 1)[0]


class TokenService:
    """Issues and verifies tokens. A token whose signature, header, audience and issuer were verified is
    remembered (the exact token string, until it expires; at most :data:`VERIFIED_CACHE_SIZE`), so a
    client's next requests skip the signature check; the time claims, their types and the scopes are
    checked again on every use, against the clock. Replacing the ring forgets every remembered token,
    so a remembered verification never outlives its key."""

    def __init__(self, ring: KeyRing, settings: ApiSettings, now: Callable[[], datetime]) -> None:
        self._lock = threading.Lock()
        self._verified: dict[str, dict[str, Any]] = {}
        self._ring = ring
        self.cfg = settings
        self.now = now

    @property
    def ring(self) -> KeyRing:
        return self._ring

    @ring.setter
    def ring(self, ring: KeyRing) -> None:
        with self._lock:
            self._ring = ring
            self._verified = {}

    def issue(self, *, sub: str, role: str, scopes: Iterable[str]) -> tuple[str, int]:
        """A signed access token and its lifetime in seconds."""
        key = self.ring.signing_key
        iat = int(self.now().timestamp())
        ttl = int(self.cfg.token_ttl_seconds)
        claims = {"iss": self.cfg.issuer, "aud": self.cfg.audience, "sub": sub, "role": role,
                  "scope": " ".join(sorted(set(scopes))), "iat": iat, "nbf": iat, "exp": iat + ttl,
                  "jti": secrets.token_urlsafe(16)}
        token = jwt.encode(claims, key.private, algorithm=key.alg, headers={"kid": key.kid, "typ": TOKEN_TYPE})
        return token, ttl

    def verify(self, token: str) -> Claims:
        if not token or len(token) > MAX_TOKEN_LENGTH or token.count(".") != 2:
            raise TokenInvalid("malformed")
        known = self._verified.get(token)
        if known is not None:
            try:
                return self._check_claims(known)
            except TokenInvalid:
                self._verified.pop(token, None)
                raise
        ring = self._ring
        claims = self._check_claims(raw := self._verify_signed(token, ring))
        self._remember(token, raw, ring)
        return claims

    def _remember(self, token: str, claims: dict[str, Any], ring: KeyRing) -> None:
        with self._lock:
            if ring is not self._ring:  # replaced while this token was being verified
                return
            if len(self._verified) >= VERIFIED_CACHE_SIZE:
                now = self.now().timestamp()
                self._verified = {t: c for t, c in self._verified.items() if c["exp"] > now}
                if len(self._verified) >= VERIFIED_CACHE_SIZE:
                    self._verified.clear()
            self._verified[token] = claims

    def _verify_signed(self, token: str, ring: KeyRing) -> dict[str, Any]:
        """The token's claims once its header, signature, audience and issuer are verified."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise TokenInvalid("malformed header") from None
        if str(header.get("typ", "")).lower() not in (TOKEN_TYPE, "application/" + TOKEN_TYPE):
            raise TokenInvalid("wrong typ")
        key = ring.get(header.get("kid"))
        if key is None:
            raise TokenInvalid("unknown kid")
        if header.get("alg") != key.alg:
            raise TokenInvalid("algorithm does not match the key")
        try:
            claims = jwt.decode(token, key.public, algorithms=[key.alg], audience=self.cfg.audience,
                                issuer=self.cfg.issuer,
                                options={"verify_exp": False, "verify_nbf": False, "verify_iat": False,
                                         "require": list(REQUIRED_CLAIMS)})
        except jwt.InvalidAudienceError:
            raise TokenInvalid("wrong audience") from None
        except jwt.InvalidIssuerError:
            raise TokenInvalid("wrong issuer") from None
        except jwt.PyJWTError as exc:
            raise TokenInvalid(f"rejected: {type(exc).__name__}") from None
        if not isinstance(claims, dict):  # pragma: no cover - PyJWT returns a dict
            raise TokenInvalid("claims are not an object")
        return claims

    def _check_claims(self, c: dict[str, Any]) -> Claims:
        if not all(isinstance(c.get(k), int) and not isinstance(c.get(k), bool) for k in ("iat", "nbf", "exp")):
            raise TokenInvalid("time claims must be integers")
        if not all(isinstance(c.get(k), str) for k in ("sub", "role", "scope", "jti")):
            raise TokenInvalid("claims of the wrong type")
        now, leeway = self.now().timestamp(), self.cfg.clock_leeway_seconds
        if now >= c["exp"] + leeway:
            raise TokenInvalid("expired")
        if now + leeway < c["nbf"] or now + leeway < c["iat"]:
            raise TokenInvalid("not yet valid")
        if c["exp"] - c["iat"] > self.cfg.token_ttl_seconds + leeway:
            raise TokenInvalid("lifetime longer than allowed")
        scopes = frozenset(c["scope"].split())
        if not scopes <= SCOPES.keys():
            raise TokenInvalid("unknown scope")
        return Claims(sub=c["sub"], role=c["role"], scopes=scopes, jti=c["jti"], issued_at=c["iat"],
                      expires_at=c["exp"])
