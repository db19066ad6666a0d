"""The documented finding codes are exactly the ones the evaluator emits, with the same severities and triggers."""

import re
from pathlib import Path

from services.evaluator.domain.codes import CODES, TRUST_CODES

DOC = Path(__file__).resolve().parents[2] / "docs" / "findings.md"


def documented() -> dict[str, tuple[str, str, bool]]:
    """code → (severity, trigger, trust) from docs/findings.md; `a` / `b` rows name two codes."""
    rows: dict[str, tuple[str, str, bool]] = {}
    for line in DOC.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 5 or not cells[0].startswith("`"):
            continue
        for code in re.findall(r"`([a-z0-9_.]+)`", cells[0]):
            rows[code] = (cells[1], cells[2], cells[3] == "yes")
    return rows


def test_every_code_is_documented_as_the_evaluator_defines_it() -> None:
    """docs/findings.md lists each code once, with its default severity, trigger and whether it is about trust."""
    expected = {code: (spec.severity, spec.trigger, code in TRUST_CODES) for code, spec in CODES.items()}
    assert documented() == expected
