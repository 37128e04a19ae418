"""Log-in and sign-up throttling with the ``limits`` library (moving windows).

Counters live in process memory (thread-safe; one set per server process, so N processes
allow N times the figure) or in Redis when ``CROWDLAB_REDIS_URL`` is set (shared by all).
Only failed log-ins count, so a user who types the password right is never slowed down.
While Redis cannot be reached, each process counts in its own memory again (log-ins keep
working, still throttled), and goes back to Redis once it answers.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field

from limits import RateLimitItem, parse
from limits.errors import StorageError
from limits.storage import MemoryStorage, storage_from_string
from limits.strategies import MovingWindowRateLimiter

from app.settings import Settings

log = logging.getLogger("crowdlab.rate_limits")


class TooManyAttempts(Exception):
    """Refused before the credentials are even checked; ``retry_after`` in seconds."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"Too many attempts; retry in {retry_after} s.")
        self.retry_after = retry_after


@dataclass
class AuthThrottle:
    """The limits of one application: failed log-ins per e-mail and per IP, sign-ups per IP."""

    limiter: MovingWindowRateLimiter
    per_email: RateLimitItem
    per_ip: RateLimitItem
    signup_per_ip: RateLimitItem
    # counts here while the shared storage (Redis) does not answer
    local: MovingWindowRateLimiter = field(
        default_factory=lambda: MovingWindowRateLimiter(MemoryStorage())
    )

    @classmethod
    def from_settings(cls, settings: Settings) -> AuthThrottle:
        storage = (
            storage_from_string(settings.redis_url, wrap_exceptions=True)
            if settings.redis_url
            else None
        )
        return cls(
            limiter=MovingWindowRateLimiter(storage or MemoryStorage()),
            per_email=parse(settings.login_limit_per_email),
            per_ip=parse(settings.login_limit_per_ip),
            signup_per_ip=parse(settings.signup_limit_per_ip),
        )

    def _call(self, method: str, *args):
        """``limiter.<method>(*args)``, on this process's own counters while Redis is down."""
        try:
            return getattr(self.limiter, method)(*args)
        except StorageError as exc:
            log.warning("rate-limit storage unreachable, counting in this process: %s",
                        str(exc.storage_error).splitlines()[0])  # fmt: skip
            return getattr(self.local, method)(*args)

    def _check(self, *checks: tuple[RateLimitItem, str, str]) -> None:
        waits = []
        for item, scope, key in checks:
            if not self._call("test", item, scope, key):
                reset = self._call("get_window_stats", item, scope, key).reset_time
                waits.append(max(1, math.ceil(reset - time.time())))
        if waits:
            raise TooManyAttempts(max(waits))

    def check_login(self, *, ip: str, email: str) -> None:
        """``TooManyAttempts`` when this IP or this e-mail failed too often lately."""
        self._check((self.per_ip, "login-ip", ip), (self.per_email, "login-email", _key(email)))

    def login_failed(self, *, ip: str, email: str) -> None:
        """Count a failed log-in against the IP and the e-mail."""
        self._call("hit", self.per_ip, "login-ip", ip)
        self._call("hit", self.per_email, "login-email", _key(email))

    def check_signup(self, *, ip: str) -> None:
        """Count a sign-up attempt; ``TooManyAttempts`` past the IP's allowance."""
        if not self._call("hit", self.signup_per_ip, "signup-ip", ip):
            self._check((self.signup_per_ip, "signup-ip", ip))
            raise TooManyAttempts(60)


def _key(email: str) -> str:
    return email.strip().lower()[:254]
