"""Password hashing with argon2id (memory-hard), parameters from settings."""

from __future__ import annotations

from dataclasses import dataclass, field

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

MAX_PASSWORD_LEN = 1024


@dataclass(frozen=True)
class Passwords:
    time_cost: int = 3
    memory_kib: int = 65536
    parallelism: int = 4
    _hasher: PasswordHasher = field(init=False, repr=False, compare=False)
    _dummy: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        hasher = PasswordHasher(
            time_cost=self.time_cost, memory_cost=self.memory_kib, parallelism=self.parallelism
        )
        object.__setattr__(self, "_hasher", hasher)
        # Verified against when the user does not exist, so an unknown user
        # costs the same time as a wrong password.
        object.__setattr__(self, "_dummy", hasher.hash("not a password of anyone"))

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, stored: str | None, password: str) -> bool:
        """Constant-time verification; ``stored=None`` burns the same time and fails."""
        if len(password) > MAX_PASSWORD_LEN:
            return False
        try:
            self._hasher.verify(stored or self._dummy, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
        return stored is not None

    def needs_rehash(self, stored: str) -> bool:
        return self._hasher.check_needs_rehash(stored)
