"""The answer memo every learned tier keeps: per ``(detector, label)``, bounded, thread-safe.

A tier's model version is fixed, so a memo per tier is a memo per model version. Only
answers are kept (a fallback is not: the next request asks again), and the oldest go
first once ``size`` is reached.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from llama_mapper.mapping.learned import Prediction

Key = tuple[str, str]


class AnswerMemo:
    def __init__(self, size: int) -> None:
        self.size = size
        self._answers: OrderedDict[Key, Prediction] = OrderedDict()
        self._lock = threading.Lock()
        #: Memo hits and misses (model calls), for tests, ``/ready`` and the benches.
        self.hits = 0
        self.misses = 0

    def get(self, key: Key) -> Prediction | None:
        """The memoized answer (counted as a hit), or ``None`` (counted as a miss)."""
        with self._lock:
            cached = self._answers.get(key)
            if cached is None:
                self.misses += 1
                return None
            self._answers.move_to_end(key)
            self.hits += 1
            return cached

    def put(self, key: Key, prediction: Prediction) -> None:
        with self._lock:
            self._answers[key] = prediction
            if len(self._answers) > self.size:
                self._answers.popitem(last=False)
