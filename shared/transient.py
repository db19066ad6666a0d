"""Which failures mean that a dependency (the broker, the database) is away for now, as opposed to a bug or bad
input: the former are retried until it returns, the latter take their normal course (a rejected message ends in
the dead letters after the delivery limit)."""

import asyncpg

from shared.broker.bus import BusError
from shared.db import DatabaseError

#: The broker did not confirm; a socket failed or timed out; PostgreSQL closed the connection, is starting up or
#: shutting down (class 57), is out of connections, or the client lost its connection mid-operation.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    BusError,
    DatabaseError,
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.InsufficientResourcesError,
    asyncpg.InterfaceError,
)


def is_transient(exc: BaseException) -> bool:
    """Whether `exc` (or the error it was raised from) says a dependency is unavailable for now."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, TRANSIENT_ERRORS):
            return True
        seen.add(id(current))
        current = current.__cause__
    return False
