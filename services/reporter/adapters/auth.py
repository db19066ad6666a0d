"""Bearer tokens and their scopes for the dashboard and `/api/v1`.

`CERTMON_API_TOKENS` may read; `CERTMON_API_WRITE_TOKENS` may read and write. A missing or unknown token is 401,
a read token where writing is asked is 403. With no token of either kind configured everything is open, as a
local `certmon run` expects; the service says so in a log line when it starts.
"""

import hmac
from collections.abc import Awaitable, Callable
from typing import Annotated, Literal

from fastapi import Depends, HTTPException
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from shared.settings import Settings

Scope = Literal["read", "write"]

# Two names for the same bearer scheme, so the OpenAPI document says which routes need a write token.
_read_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="readToken",
    description="A token from CERTMON_API_TOKENS (read) or CERTMON_API_WRITE_TOKENS (read and write).",
)
_write_bearer = HTTPBearer(
    auto_error=False, scheme_name="writeToken", description="A token from CERTMON_API_WRITE_TOKENS."
)

Guard = Callable[..., Awaitable[None]]


class ApiTokens:
    """The configured tokens and the scope each grants."""

    def __init__(self, settings: Settings) -> None:
        self._tokens: list[tuple[bytes, Scope]] = [
            *((t.get_secret_value().encode(), "read") for t in settings.api_tokens),
            *((t.get_secret_value().encode(), "write") for t in settings.api_write_tokens),
        ]

    @property
    def open(self) -> bool:
        """True when no token is configured: anyone may read and write."""
        return not self._tokens

    def scope_of(self, given: bytes) -> Scope | None:
        """The widest scope `given` grants, or None if it is no configured token."""
        # Compare against every token, so the time taken does not tell which one (or whether any) was close.
        matched = [scope for token, scope in self._tokens if hmac.compare_digest(given, token)]
        return "write" if "write" in matched else "read" if matched else None

    def require(self, scope: Scope) -> Guard:
        """A FastAPI dependency that lets a request through only with a token of `scope` (or wider)."""
        bearer = _write_bearer if scope == "write" else _read_bearer

        async def guard(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> None:
            if self.open:
                return
            granted = self.scope_of(credentials.credentials.encode() if credentials is not None else b"")
            if granted is None:
                raise HTTPException(401, "a valid bearer token is required", headers={"WWW-Authenticate": "Bearer"})
            if scope == "write" and granted != "write":
                raise HTTPException(403, "this token may only read; acknowledging needs a write token")

        return guard
