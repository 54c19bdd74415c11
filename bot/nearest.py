"""What unknown words most likely mean, from the labelled examples they are nearest to.

Used only when no pattern of config/phrasings.yaml fits: the rules know the key words, the
examples (config/utterances.jsonl, the corpus) know how people go around them. A guess is made only
when two measures agree — the likeliest label over all examples (naive Bayes on characters
and character pairs) and the label of the single nearest example (cosine) — and the nearest
example is near enough; otherwise the message stays not understood.
"""
from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from functools import lru_cache

_DIGITS = re.compile(r"\d+")


def features(plain: str) -> Counter:
    """Characters and character pairs; numbers read as one sign (12号 is like 3号)."""
    plain = _DIGITS.sub("0", plain)
    return Counter([*plain, *(plain[i:i + 2] for i in range(len(plain) - 1))])


class Nearest:
    """Labelled examples, and the label a new message most likely has."""

    def __init__(self, examples: list[tuple[str, str]], smoothing: float = 0.1):
        self.smoothing = smoothing
        self.counts: dict[str, Counter] = defaultdict(Counter)
        self.examples: list[tuple[Counter, str]] = []
        for plain, label in examples:
            seen = features(plain)
            self.counts[label].update(set(seen))
            self.examples.append((seen, label))
        self.vocabulary = {f for c in self.counts.values() for f in c}
        self.totals = {label: sum(c.values()) for label, c in self.counts.items()}
        documents = Counter(f for seen, _ in self.examples for f in seen)
        self.idf = {f: math.log((len(self.examples) + 1) / (n + 1)) + 1
                    for f, n in documents.items()}
        self.vectors = [(self._vector(seen), label) for seen, label in self.examples]
        self.guess = lru_cache(maxsize=2048)(self._guess)

    def _vector(self, seen: Counter) -> dict[str, float]:
        """Rare features weigh more; unit length, so a dot product is the cosine."""
        weights = {f: n * self.idf[f] for f, n in seen.items() if f in self.idf}
        norm = math.sqrt(sum(w * w for w in weights.values())) or 1.0
        return {f: w / norm for f, w in weights.items()}

    def likeliest(self, plain: str) -> list[tuple[str, float]]:
        """Each label's probability (flat prior, so rare commands are not drowned), best first."""
        seen = [f for f in set(features(plain)) if f in self.vocabulary]
        size = len(self.vocabulary)
        logs = {label: sum(math.log((self.counts[label][f] + self.smoothing) /
                                    (self.totals[label] + self.smoothing * size)) for f in seen)
                for label in self.counts}
        top = max(logs.values())
        total = sum(math.exp(v - top) for v in logs.values())
        return sorted(((lab, math.exp(v - top) / total) for lab, v in logs.items()),
                      key=lambda pair: -pair[1])

    def nearest(self, plain: str) -> dict[str, float]:
        """Each label's nearest example's similarity to the message (0 to 1)."""
        query = self._vector(features(plain))
        best: dict[str, float] = {}
        for vector, label in self.vectors:
            sim = sum(w * vector.get(f, 0.0) for f, w in query.items())
            best[label] = max(best.get(label, 0.0), sim)
        return best

    def _guess(self, plain: str, sure: float, near: float, close: float) -> tuple[str, ...]:
        """The label meant; two labels when both are likely (ask which); () when unsure."""
        ranked, sims = self.likeliest(plain), self.nearest(plain)
        if not ranked:
            return ()
        (first, p1), rest = ranked[0], ranked[1:]
        if max(sims, key=sims.get) != first or sims[first] < near:
            return ()
        if rest and rest[0][1] >= close and sims.get(rest[0][0], 0.0) >= near:
            return first, rest[0][0]
        return (first,) if p1 >= sure else ()
