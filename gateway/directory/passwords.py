"""The one argon2 hasher of the directory's passwords (argon2-cffi's recommended parameters)."""

from __future__ import annotations

from argon2 import PasswordHasher

HASHER = PasswordHasher()
