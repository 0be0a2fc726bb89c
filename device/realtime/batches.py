"""Tool-call bookkeeping: the calls of one response are answered with one ``response.create``.

OpenAI refuses a ``response.create`` while a response is active, and xAI documents "send every
function output, then one ``response.create``": so the reply is asked for once the response
that made the calls is done *and* every one of its outputs was sent.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

#: Tool calls that may run at once; more are refused (answered with an error output).
MAX_CALLS_IN_FLIGHT = 32
#: Responses whose calls are tracked at once (a peer that never sends response.done).
MAX_BATCHES = 64


@dataclass
class _Batch:
    pending: set[str] = field(default_factory=set)
    done: bool = False
    reply: bool = True


class ToolBatches:
    """Which calls belong to which response, and when to ask for the reply."""

    def __init__(self) -> None:
        self._batches: OrderedDict[str, _Batch] = OrderedDict()
        self._owner: dict[str, str] = {}

    def __len__(self) -> int:
        """Calls running now."""
        return len(self._owner)

    def clear(self) -> None:
        self._batches.clear()
        self._owner.clear()

    def add(self, call_id: str, response_id: str | None) -> bool:
        """A call of ``response_id`` (``None``: no response is known active, so it is answered
        on its own). ``False``: refused (too many running, or a repeated id); then call
        :meth:`refused` once its error output is sent."""
        if len(self._owner) >= MAX_CALLS_IN_FLIGHT or call_id in self._owner:
            return False
        self._batch(response_id or "").pending.add(call_id)
        self._owner[call_id] = response_id or ""
        return True

    def refused(self, response_id: str | None) -> bool:
        """A call of ``response_id`` was refused and its error output sent: it counts as
        answered in that response's batch, so the reply is still asked for once the response
        is done (even if every call was refused). True: send ``response.create`` now."""
        key = response_id or ""
        return self._close(key, self._batch(key))

    def _batch(self, key: str) -> _Batch:
        batch = self._batches.get(key)
        if batch is None:
            batch = self._batches[key] = _Batch(done=not key)
            while len(self._batches) > MAX_BATCHES:
                _, old = self._batches.popitem(last=False)
                for stale in old.pending:
                    self._owner.pop(stale, None)
        return batch

    def answered(self, call_id: str) -> tuple[bool, bool]:
        """The output of ``call_id`` is sent: ``(known, reply)``. ``known`` is False for a
        call this conversation does not know (an earlier connection's); ``reply``: now send
        ``response.create``."""
        key = self._owner.pop(call_id, None)
        if key is None:
            return False, False
        batch = self._batches.get(key)
        if batch is None:
            return True, False
        batch.pending.discard(call_id)
        return True, self._close(key, batch)

    def response_done(self, response_id: str, *, reply: bool) -> bool:
        """The response finished; True: send ``response.create`` now. ``reply=False`` (it was
        cancelled or failed) sends the outputs but asks for nothing."""
        batch = self._batches.get(response_id)
        if batch is None:
            return False
        batch.done = True
        batch.reply = reply
        return self._close(response_id, batch)

    def _close(self, key: str, batch: _Batch) -> bool:
        if not batch.done or batch.pending:
            return False
        del self._batches[key]
        return batch.reply
