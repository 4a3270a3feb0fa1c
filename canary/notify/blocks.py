"""Slack Block Kit pieces: mrkdwn escaping, visible truncation and the limits Slack enforces.

`validate_message` returns every limit a message breaks; the renderer calls it before anything
is sent, so an invalid payload never leaves the controller.
"""

from __future__ import annotations

from typing import Any, Final

MAX_BLOCKS: Final = 50
MAX_HEADER: Final = 150
MAX_SECTION_TEXT: Final = 3000
MAX_FIELDS: Final = 10
MAX_FIELD_TEXT: Final = 2000
MAX_CONTEXT_ELEMENTS: Final = 10
MAX_CONTEXT_TEXT: Final = 2000
MAX_FALLBACK_TEXT: Final = 3000

Block = dict[str, Any]


def escape(text: str) -> str:
    """Escape the three characters Slack's mrkdwn gives meaning to, so user text cannot ping or link."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def truncate(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters, ending with a visible `… (n more chars)`."""
    if len(text) <= limit:
        return text
    keep = limit
    while keep > 0:
        suffix = f"… ({len(text) - keep} more chars)"
        if keep + len(suffix) <= limit:
            return text[:keep] + suffix
        keep = limit - len(suffix)
    return text[:limit]


def fit_mrkdwn(raw: str, limit: int) -> str:
    """Escaped `raw`, truncated visibly so that the escaped text fits `limit` (escaping adds characters)."""
    budget = limit
    while True:
        text = escape(truncate(raw, budget))
        if len(text) <= limit or budget <= 0:
            return text if len(text) <= limit else text[:limit]
        budget -= len(text) - limit


def join_within(parts: list[str], limit: int, sep: str, more: str = "more") -> str:
    """As many whole `parts` as fit in `limit`, then `… (n more)` for the rest."""
    out: list[str] = []
    for index, part in enumerate(parts):
        rest = len(parts) - index - 1
        tail = f"{sep}… ({rest} {more})" if rest else ""
        candidate = sep.join([*out, part])
        if len(candidate) + len(tail) > limit:
            note = f"… ({len(parts) - index} {more})"
            return sep.join([*out, note]) if out else note
        out.append(part)
    return sep.join(out)


def header(text: str) -> Block:
    return {"type": "header", "text": {"type": "plain_text", "text": truncate(text, MAX_HEADER), "emoji": True}}


def section(mrkdwn: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": truncate(mrkdwn, MAX_SECTION_TEXT)}}


def fields_section(fields: list[str], text: str | None = None) -> Block:
    block: Block = {"type": "section"}
    if text is not None:
        block["text"] = {"type": "mrkdwn", "text": truncate(text, MAX_SECTION_TEXT)}
    block["fields"] = [{"type": "mrkdwn", "text": truncate(f, MAX_FIELD_TEXT)} for f in fields[:MAX_FIELDS]]
    return block


def context(elements: list[str]) -> Block:
    return {
        "type": "context",
        "elements": [
            {"type": "mrkdwn", "text": truncate(e, MAX_CONTEXT_TEXT)} for e in elements[:MAX_CONTEXT_ELEMENTS]
        ],
    }


def divider() -> Block:
    return {"type": "divider"}


def _text_problems(obj: object, where: str, limit: int, types: tuple[str, ...]) -> list[str]:
    if not isinstance(obj, dict):
        return [f"{where}: expected a text object"]
    problems = []
    if obj.get("type") not in types:
        problems.append(f"{where}.type: must be one of {', '.join(types)}")
    text = obj.get("text")
    if not isinstance(text, str) or not text:
        problems.append(f"{where}.text: must be a non-empty string")
    elif len(text) > limit:
        problems.append(f"{where}.text: {len(text)} characters, more than {limit}")
    return problems


def validate_message(message: dict[str, Any]) -> list[str]:
    """Every Slack limit `message` breaks, each naming the block and field; empty when it is valid."""
    problems: list[str] = []
    text, blocks = message.get("text"), message.get("blocks")
    if not (isinstance(text, str) and text) and not blocks:
        problems.append("message: needs a non-empty `text` or `blocks`")
    if text is not None and (not isinstance(text, str) or len(text) > MAX_FALLBACK_TEXT):
        problems.append(f"text: must be a string of at most {MAX_FALLBACK_TEXT} characters")
    if blocks is None:
        return problems
    if not isinstance(blocks, list):
        return [*problems, "blocks: must be a list"]
    if len(blocks) > MAX_BLOCKS:
        problems.append(f"blocks: {len(blocks)} blocks, more than {MAX_BLOCKS}")
    for index, block in enumerate(blocks):
        where = f"blocks[{index}]"
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "header":
            problems += _text_problems(block.get("text"), f"{where}.text", MAX_HEADER, ("plain_text",))
        elif kind == "section":
            fields = block.get("fields")
            if "text" not in block and not fields:
                problems.append(f"{where}: a section needs `text` or `fields`")
            if "text" in block:
                text_types = ("plain_text", "mrkdwn")
                problems += _text_problems(block["text"], f"{where}.text", MAX_SECTION_TEXT, text_types)
            if fields is not None:
                if not isinstance(fields, list) or not 1 <= len(fields) <= MAX_FIELDS:
                    problems.append(f"{where}.fields: must be a list of 1 to {MAX_FIELDS} text objects")
                else:
                    for i, field in enumerate(fields):
                        problems += _text_problems(
                            field, f"{where}.fields[{i}]", MAX_FIELD_TEXT, ("plain_text", "mrkdwn")
                        )
        elif kind == "context":
            elements = block.get("elements")
            if not isinstance(elements, list) or not 1 <= len(elements) <= MAX_CONTEXT_ELEMENTS:
                problems.append(f"{where}.elements: must be a list of 1 to {MAX_CONTEXT_ELEMENTS} elements")
            else:
                for i, element in enumerate(elements):
                    problems += _text_problems(
                        element, f"{where}.elements[{i}]", MAX_CONTEXT_TEXT, ("plain_text", "mrkdwn")
                    )
        elif kind != "divider":
            problems.append(f"{where}.type: unsupported block type {kind!r}")
    return problems
