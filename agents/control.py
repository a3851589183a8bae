"""Control agent: apply key and keyword commands to the keys table, in order."""

from __future__ import annotations

from typing import Any

from agents import AgentFun
from app.keys.control import KeyControl
from app.pipeline.boundary import batch_boundary, record_boundary
from app.pipeline.dead_letters import DeadLetters


def control_agent(control: KeyControl, dead_letters: DeadLetters) -> AgentFun:
    """Return the agent that applies each command; refused ones go to the dead-letter topic."""

    async def apply_control(stream: Any) -> None:
        """Update the keys table from each command; refused commands are dead-lettered."""
        async for event in stream.events():
            async with batch_boundary(dead_letters, [event]):
                async with record_boundary(dead_letters, "control", event):
                    await control.apply(event.value)

    return apply_control
