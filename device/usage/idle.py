"""Idle disconnect policy, pure: ``[behaviour] idle_disconnect_s``.

The conversation is idle when nobody has spoken, the model has not responded and no command
came for ``idle_disconnect_s`` seconds. While the user is speaking or the model is talking
(a response in progress or its audio still playing) it is never idle; the countdown starts
again when both have stopped.

Times are monotonic seconds. The app feeds it and arms one timer at :attr:`IdleTimer.deadline`;
when the timer fires it asks :meth:`IdleTimer.expired` (the deadline may have moved since).
"""

from __future__ import annotations


class IdleTimer:
    def __init__(self, idle_s: float) -> None:
        self.idle_s = idle_s
        self._active = False
        self._last_activity = 0.0
        self._user_speaking = False
        self._model_talking = False

    @property
    def enabled(self) -> bool:
        return self.idle_s > 0

    def start(self, now: float) -> None:
        """Connected: the countdown starts."""
        self._active = True
        self._user_speaking = self._model_talking = False
        self._last_activity = now

    def stop(self) -> None:
        """Disconnected (for whatever reason): no deadline until :meth:`start`."""
        self._active = False
        self._user_speaking = self._model_talking = False

    def activity(self, now: float) -> None:
        """A command (control socket, button), a model event, or anything else that counts as
        use: the countdown starts again."""
        self._last_activity = now

    def user_speaking(self, speaking: bool, now: float) -> None:
        """``speech_started`` (True) / ``speech_stopped`` or the turn committed (False)."""
        self._user_speaking = speaking
        self._last_activity = now

    def model_talking(self, talking: bool, now: float) -> None:
        """A response started or its audio plays (True) / the response is done and its audio
        has finished playing, or was cancelled (False)."""
        self._model_talking = talking
        self._last_activity = now

    @property
    def deadline(self) -> float | None:
        """When the conversation becomes idle, or ``None`` (off, disconnected, or busy)."""
        if not (self.enabled and self._active) or self._user_speaking or self._model_talking:
            return None
        return self._last_activity + self.idle_s

    def expired(self, now: float) -> bool:
        deadline = self.deadline
        return deadline is not None and now >= deadline
