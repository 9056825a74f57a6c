"""A teacher that answers as the embedded one does, for tests that need no model.

`ReplyStartingTeacher(texts)` starts each reply with the request's `reply_prefix`, continues it with
`texts(request)` and cuts it at the request's first stop string, as the local teacher does; it records
the requests. Import it as `from tests.fake_teacher import ReplyStartingTeacher`.
"""

from __future__ import annotations

from typing import Any, Callable

from data_generation.teacher.base import Choice, Completion, Request


class ReplyStartingTeacher:
    starts_replies = True
    model = "fake-local"

    def __init__(self, texts: Callable[[Request], str]) -> None:
        self.texts, self.requests = texts, []

    def complete_all(self, requests: list[Request]) -> list[Completion]:
        out = []
        for request in requests:
            self.requests.append(request)
            text = self.texts(request)
            for stop in request.decoding.stop:
                text = text.split(stop)[0]
            out.append(Completion((Choice(request.reply_prefix + text, "stop"),), self.model, 10, 10))
        return out

    def usage(self) -> dict[str, Any]:
        return {"requests": len(self.requests)}

    def close(self) -> None:
        pass
