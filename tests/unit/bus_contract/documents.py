"""The documents the bus contract tests read: docs/contract.md and docs/asyncapi.yaml."""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[3]
CONTRACT_MD = REPO / "docs" / "contract.md"
ASYNCAPI = REPO / "docs" / "asyncapi.yaml"

_FENCE = re.compile(r"^```(?P<lang>\w*)\n(?P<body>.*?)^```\s*$", re.S | re.M)


@cache
def fenced_blocks(lang: str) -> tuple[str, ...]:
    """The bodies of the fenced code blocks of docs/contract.md in language ``lang``."""
    text = CONTRACT_MD.read_text(encoding="utf-8")
    return tuple(m["body"] for m in _FENCE.finditer(text) if m["lang"] == lang)


def dead_letter_headers() -> dict[str, str]:
    """The headers docs/contract.md says a RabbitMQ dead letter gains, with their wording."""
    text = CONTRACT_MD.read_text(encoding="utf-8")
    start = text.index("| Header | Value |")
    rows = re.findall(r"^ *\| `(x-[a-z-]+)` \| (.+) \|$", text[start:], re.M)
    table: dict[str, str] = {}
    for name, value in rows:
        if name in table:
            break
        table[name] = value
    return table


def http_example(request_line: str) -> dict[str, Any]:
    """The JSON answer of the ``http`` example in docs/contract.md starting ``request_line``."""
    for block in fenced_blocks("http"):
        if block.startswith(request_line):
            _, _, answer = block.partition("\n\nHTTP/1.1 ")
            _, _, body = answer.partition("\n\n")
            loaded = json.loads(body)
            assert isinstance(loaded, dict)
            return loaded
    raise AssertionError(f"docs/contract.md has no http example {request_line!r}")
