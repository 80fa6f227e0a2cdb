"""Loop helpers shared by both runtimes, in plain Python (no torch: the ONNX Runtime path uses them
too): how well a transcript compresses, cutting a repeated tail that the CTC best path does not
support, and when a beam has finished."""

from __future__ import annotations

import zlib


def compression_ratio(text: str) -> float:
    """Bytes of the text over bytes of it compressed (zlib): Whisper calls above 2.4 a loop."""
    data = text.encode("utf-8")
    return len(data) / len(zlib.compress(data)) if data else 0.0


def trim_repetitions(seq: list[int], reference: list[int], min_repeats: int = 3, max_period: int = 12) -> list[int]:
    """Cut a loop off the end of a greedy output: if `seq` ends with a unit (1..max_period tokens)
    repeated at least `min_repeats` times, keep only as many repeats as `reference` (the CTC best
    path, which cannot loop) contains in a row, and at least one."""
    for period in range(1, min(max_period, len(seq) // min_repeats) + 1):
        unit = seq[-period:]
        reps = 1
        while (
            reps * period + period <= len(seq)
            and seq[len(seq) - (reps + 1) * period : len(seq) - reps * period] == unit
        ):
            reps += 1
        if reps >= min_repeats:
            allowed = max(1, _max_run(reference, unit))
            if reps > allowed:
                return seq[: len(seq) - (reps - allowed) * period]
    return seq


def _max_run(seq: list[int], unit: list[int]) -> int:
    """Most consecutive repeats of `unit` anywhere in `seq`."""
    p, best = len(unit), 0
    for start in range(len(seq)):
        n = 0
        while seq[start + n * p : start + (n + 1) * p] == unit:
            n += 1
        best = max(best, n)
    return best


def beam_finished(scores: list[float], best_live: float, n_best: int, enough: int | None) -> bool:
    """An utterance's beam is done: with patience, once it has `enough` finished hypotheses; else once
    it has n_best of them and the n_best-th (`scores`, length-normalized) beats the best live one."""
    if enough is not None:
        return len(scores) >= enough
    return len(scores) >= n_best and sorted(scores)[-n_best] >= best_live
