"""Faust agents, one module each (posts, ocr, filter, control): thin loops over a stream.

Each module has a function that takes what its agent uses and returns the agent's function;
the worker (``app/worker.py``) registers it on the Faust app with its topic. The work itself is
in ``app/``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

# What Faust runs for an agent: a coroutine function of the agent's stream.
AgentFun = Callable[[Any], Awaitable[None]]
