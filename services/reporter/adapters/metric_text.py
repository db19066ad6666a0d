"""The Prometheus text exposition format (0.0.4), written directly.

`/metrics` serves every target at once, so a scrape of 100,000 targets renders millions of samples; building them
as client-library objects costs several times more than formatting the lines. Label values are attacker-chosen text
(certificate subjects), so every value goes through `escape`.
"""

import math

_TYPES = frozenset({"gauge", "counter", "untyped"})


def escape(value: str) -> str:
    """A label value escaped for the text format: backslash, double quote and line feed."""
    if "\\" in value or '"' in value or "\n" in value:
        return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return value


def number(value: float) -> str:
    """A sample value as Prometheus reads it (integers without a fraction)."""
    if type(value) is int:
        return str(value)
    if math.isfinite(value):
        return str(int(value)) if value.is_integer() else repr(value)
    return "NaN" if math.isnan(value) else ("+Inf" if value > 0 else "-Inf")


class Family:
    """One metric family: its help and type lines, then one line per sample."""

    __slots__ = ("help", "lines", "name", "type")

    def __init__(self, name: str, help_text: str, kind: str = "gauge") -> None:
        if kind not in _TYPES:
            raise ValueError(f"unsupported metric type {kind!r}")
        self.name, self.help, self.type = name, help_text, kind
        self.lines: list[str] = []

    def add(self, label_text: str, value: float) -> None:
        """Add a sample; `label_text` is already escaped (values passed through `escape`)."""
        text = str(value) if type(value) is int else number(value)
        self.lines.append(f"{self.name}{{{label_text}}} {text}\n" if label_text else f"{self.name} {text}\n")

    def render(self) -> str:
        """The family's text: help and type even without samples, so the family is always listed."""
        help_text = self.help.replace("\\", "\\\\").replace("\n", "\\n")
        return f"# HELP {self.name} {help_text}\n# TYPE {self.name} {self.type}\n" + "".join(self.lines)
