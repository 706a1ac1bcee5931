"""Password hashing: bcrypt over a SHA-256 pre-hash (so passwords longer than bcrypt's 72 bytes
are neither truncated nor refused)."""

from __future__ import annotations

import base64
import hashlib
import secrets
import string

import bcrypt

PREFIX = "bcrypt-sha256$"
MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 1024
PASSWORD_TOO_SHORT = f"Password must have at least {MIN_PASSWORD_LENGTH} characters."
PASSWORD_TOO_LONG = f"Password must have at most {MAX_PASSWORD_LENGTH} characters."


def _prehash(password: str) -> bytes:
    return base64.b64encode(hashlib.sha256(password.encode("utf-8", "surrogatepass")).digest())


def hash_password(password: str, rounds: int = 12) -> str:
    return PREFIX + bcrypt.hashpw(_prehash(password), bcrypt.gensalt(rounds)).decode()


def verify_password(password: str, stored: str) -> bool:
    if not stored.startswith(PREFIX):
        return False
    try:
        return bcrypt.checkpw(_prehash(password), stored[len(PREFIX):].encode())
    except ValueError:
        return False


def check_policy(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(PASSWORD_TOO_SHORT)
    if len(password) > MAX_PASSWORD_LENGTH:
        raise ValueError(PASSWORD_TOO_LONG)


def generate_password(length: int = 16) -> str:
    alphabet = string.ascii_letters + string.digits
    while True:
        pw = "".join(secrets.choice(alphabet) for _ in range(length))
        if any(c.isdigit() for c in pw) and any(c.isupper() for c in pw) and any(c.islower() for c in pw):
            return pw
