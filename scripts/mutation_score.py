"""Print the mutation score of each mutated file from mutmut's results in mutants/.

    python -m scripts.mutation_score [--min 90] [--survivors]

A mutant counts as killed when its tests failed, timed out or crashed, or when
mypy refused it (mutmut's `type_check_command`: our quality gate type-checks
strictly, so such a mutant could never be merged). Every other outcome
(survived, no test ran it, suspicious, not yet checked) counts against the
score. Exits 1 if a file scores below --min.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Final

# mutmut's exit codes (mutmut/stats.py): a test failure, pytest's internal error,
# a CPU-time limit (SIGXCPU in its three spellings) and the runner's timeout.
_KILLED: Final = frozenset({1, 3, 24, -24, 152, 36, 255, -11, -9})
_TYPE_CHECKED: Final = 37
_SURVIVED: Final = 0
_NO_TESTS: Final = frozenset({5, 33})
_SKIPPED: Final = 34


@dataclass(frozen=True, slots=True, kw_only=True)
class FileScore:
    path: str
    killed: int
    typed: int  # of `killed`, those mypy refused
    survived: tuple[str, ...]
    no_tests: tuple[str, ...]
    other: tuple[str, ...]  # suspicious, not checked

    @property
    def total(self) -> int:
        return self.killed + len(self.survived) + len(self.no_tests) + len(self.other)

    @property
    def score(self) -> float:
        return 100.0 * self.killed / self.total if self.total else 100.0


def file_scores(mutants: Path) -> list[FileScore]:
    """One score per `.meta` file mutmut wrote, sorted by path."""
    scores = []
    for meta in sorted(mutants.rglob("*.py.meta")):
        doc = json.loads(meta.read_text())
        codes: dict[str, int | None] = doc["exit_code_by_key"]
        outcome: Counter[str] = Counter()
        survived, no_tests, other = [], [], []
        for name, code in sorted(codes.items()):
            if code in _KILLED:
                outcome["killed"] += 1
            elif code == _TYPE_CHECKED:
                outcome["killed"] += 1
                outcome["typed"] += 1
            elif code == _SKIPPED:
                continue
            elif code == _SURVIVED:
                survived.append(name)
            elif code in _NO_TESTS:
                no_tests.append(name)
            else:
                other.append(name)
        scores.append(
            FileScore(
                path=str(meta.relative_to(mutants)).removesuffix(".meta"),
                killed=outcome["killed"],
                typed=outcome["typed"],
                survived=tuple(survived),
                no_tests=tuple(no_tests),
                other=tuple(other),
            )
        )
    return scores


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mutants", type=Path, default=Path("mutants"))
    parser.add_argument("--min", type=float, default=90.0, help="lowest passing score")
    parser.add_argument(
        "--survivors", action="store_true", help="list every mutant not killed"
    )
    args = parser.parse_args(argv)
    scores = [s for s in file_scores(args.mutants) if s.total]
    if not scores:
        print(f"no mutmut results under {args.mutants}/", file=sys.stderr)
        return 1
    columns = ("killed", "(mypy)", "surv.", "untested", "other", "score")
    print(f"{'file':<34}" + "".join(f"{c:>9}" for c in columns))
    for s in scores:
        cells = (s.killed, s.typed, len(s.survived), len(s.no_tests), len(s.other))
        print(f"{s.path:<34}" + "".join(f"{c:>9}" for c in cells) + f"{s.score:>8.1f}%")
    killed = sum(s.killed for s in scores)
    total = sum(s.total for s in scores)
    print(f"{'all':<34}{killed:>9}" + " " * 36 + f"{100 * killed / total:>8.1f}%")
    if args.survivors:
        for s in scores:
            for label, names in (
                ("survived", s.survived),
                ("no tests", s.no_tests),
                ("other", s.other),
            ):
                for name in names:
                    print(f"{label:<9} {name}")
    low = [s.path for s in scores if s.score < args.min]
    if low:
        print(f"below {args.min:g} %: {', '.join(low)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
