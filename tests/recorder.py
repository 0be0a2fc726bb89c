"""Record what a session tells its listeners, for assertions on what a user would see."""

from __future__ import annotations

from device.realtime.notices import ErrorNotice, MuteChanged, Notice, StatusChanged
from device.session import RealtimeSession


class Recorder:
    """Every notice of ``session``, in order."""

    def __init__(self, session: RealtimeSession) -> None:
        self.notices: list[Notice] = []
        session.subscribe(self.notices.append)

    def statuses(self) -> list[str]:
        return [n.status.value for n in self.notices if isinstance(n, StatusChanged)]

    def mutes(self) -> list[bool]:
        return [n.muted for n in self.notices if isinstance(n, MuteChanged)]

    def errors(self) -> list[ErrorNotice]:
        return [n for n in self.notices if isinstance(n, ErrorNotice)]
