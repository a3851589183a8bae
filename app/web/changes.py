"""Key changes from the HTTP API: through the one KeyAdmin, refusals as JSON answers."""

from __future__ import annotations

from collections.abc import Awaitable

from pydantic import ValidationError

from app.keys.admin import Change, UnknownKeyError
from app.keys.commands import ControlError
from app.keys.keywords import KeywordError
from app.web.errors import ApiError, describe_invalid
from models.keys import KeyRecord


async def applied(change: Awaitable[Change]) -> tuple[KeyRecord, Change]:
    """Return the key as the change left it; refusals become 400, 404 and 409 answers.

    503 when the change was sent but this worker's replica did not show it in time.
    """
    try:
        done = await change
    except UnknownKeyError as exc:
        raise ApiError(404, str(exc)) from None
    except ControlError as exc:
        raise ApiError(409, str(exc)) from None
    except KeywordError as exc:
        raise ApiError(400, str(exc)) from None
    except ValidationError as exc:
        raise ApiError(400, describe_invalid(exc)) from None
    if done.record is None:
        raise ApiError(503, "the change was sent but not applied in time; retry the read shortly")
    return done.record, done
