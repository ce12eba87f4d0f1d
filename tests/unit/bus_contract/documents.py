"""The documents the bus contract tests read: docs/contract.md and docs/asyncapi.yaml."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
CONTRACT_MD = REPO / "docs" / "contract.md"
ASYNCAPI = REPO / "docs" / "asyncapi.yaml"

_FENCE = re.compile(r"^```(?P<lang>\w*)\n(?P<body>.*?)^```\s*$", re.S | re.M)


@cache
def fenced_blocks(lang: str) -> tuple[str, ...]:
    """The bodies of the fenced code blocks of docs/contract.md in language ``lang``."""
    text = CONTRACT_MD.read_text(encoding="utf-8")
    return tuple(m["body"] for m in _FENCE.finditer(text) if m["lang"] == lang)
