"""Telegram's pace: about one message a second per chat, 20 a minute per group, 30 a second
for the whole bot. Each send reserves the next free slot of its chat, then, when that comes,
the bot's next slot, so lanes that share a chat (two keys subscribed to one group) queue
behind each other instead of earning a 429, and a chat far behind holds up no other chat.
Waiting is the queue: nothing is dropped here.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


def is_group(chat_id: str) -> bool:
    """Tell whether a chat id names a group or channel (negative, or ``@name``)."""
    return chat_id.startswith(("-", "@"))


class ChatPace:
    """Spaces sends per chat and for the bot as a whole (see the module docstring)."""

    def __init__(
        self,
        chat_interval_s: float,
        group_interval_s: float,
        max_per_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._chat_interval_s = chat_interval_s
        self._group_interval_s = group_interval_s
        self._bot_interval_s = 1.0 / max_per_s
        self._clock = clock
        self._next_for_chat: dict[str, float] = {}
        self._next_for_bot = 0.0

    def reserve_chat(self, chat_id: str) -> float:
        """Take the next free slot of ``chat_id``; return the seconds to wait for it."""
        now = self._clock()
        # No await in here: two lanes cannot take the same slot.
        slot = max(now, self._next_for_chat.get(chat_id, 0.0))
        self._next_for_chat[chat_id] = slot + self._interval(chat_id)
        self._forget_before(now)
        return slot - now

    def reserve_bot(self) -> float:
        """Take the bot's next free slot (taken at send time, so no chat blocks another)."""
        now = self._clock()
        slot = max(now, self._next_for_bot)
        self._next_for_bot = slot + self._bot_interval_s
        return slot - now

    def sent(self, chat_id: str) -> None:
        """Note a send now: the chat's next turn is at least one interval away."""
        earliest = self._clock() + self._interval(chat_id)
        self._next_for_chat[chat_id] = max(self._next_for_chat.get(chat_id, 0.0), earliest)

    async def wait_turn(self, chat_id: str) -> None:
        """Wait until ``chat_id`` may be sent to, and the bot may send."""
        chat_delay = self.reserve_chat(chat_id)
        if chat_delay > 0:
            await asyncio.sleep(chat_delay)
        bot_delay = self.reserve_bot()
        if bot_delay > 0:
            await asyncio.sleep(bot_delay)
        self.sent(chat_id)

    def _interval(self, chat_id: str) -> float:
        return self._group_interval_s if is_group(chat_id) else self._chat_interval_s

    def hold(self, chat_id: str, seconds: float) -> None:
        """Send nothing to ``chat_id`` for ``seconds`` (Telegram answered 429 with retry_after)."""
        until = self._clock() + seconds
        self._next_for_chat[chat_id] = max(self._next_for_chat.get(chat_id, 0.0), until)

    def _forget_before(self, now: float) -> None:
        # Why: chats that went quiet must not be remembered for ever.
        if len(self._next_for_chat) > 1000:
            for chat_id, at in list(self._next_for_chat.items()):
                if at < now:
                    del self._next_for_chat[chat_id]
