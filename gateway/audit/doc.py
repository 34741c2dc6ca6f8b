"""docs/audit.md's key and event tables, generated from the records (gateway/audit/records.py).

The tables stand between `<!-- generated NAME: ... -->` and `<!-- end generated NAME -->`
markers; the prose around them is kept as written:
`python -m gateway.audit.doc --write docs/audit.md` (`--check` exits 1 when stale).
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, ForwardRef

from gateway.audit.records import AUDIT_KEYS, MEANINGS, RECORDS, Written, declared

COMMAND = "python -m gateway.audit.doc --write docs/audit.md"
REGION = re.compile(r"(<!-- generated (?P<name>[a-z]+): [^\n]*-->\n)(?P<body>.*?)"
                    r"(<!-- end generated (?P=name) -->)", re.DOTALL)
WORDS = {"str": "string", "int": "integer", "float": "number", "bool": "boolean",
         "None": "null", "list[str]": "list of strings",
         "dict[str, int]": "object of counts", "Any": "any JSON value",
         "Decision": "`allow` or `deny`"}


def _text(annotation: Any) -> str:
    return annotation.__forward_arg__ if isinstance(annotation, ForwardRef) else str(annotation)


def key_types() -> dict[str, set[str]]:
    """Each key's annotation as written, across every record (one each when consistent)."""
    found: dict[str, set[str]] = {}
    for record in (Written, *RECORDS.values()):
        for key, annotation in record.__annotations__.items():
            found.setdefault(key, set()).add(_text(annotation))
    return found


def type_words(annotation: str) -> str:
    """`str | None` -> `string or null`; KeyError for a type WORDS does not name."""
    return " or ".join(WORDS[part.strip()] for part in annotation.split("|"))


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _events_of() -> dict[str, list[str]]:
    carried: dict[str, list[str]] = {}
    for event, record in RECORDS.items():
        for key in declared(record):
            carried.setdefault(key, []).append(event)
    return carried


def _listed(events: list[str]) -> str:
    return "every event" if len(events) == len(RECORDS) else ", ".join(f"`{e}`" for e in events)


def keys_table() -> str:
    types = {key: type_words(min(texts)) for key, texts in key_types().items()}
    core = [f"| `{key}` | {types[key]} | {_cell(MEANINGS[key])} |" for key in AUDIT_KEYS]
    carried = _events_of()
    extra = [f"| `{key}` | {types[key]} | {_cell(meaning)} | {_listed(carried.get(key, []))} |"
             for key, meaning in MEANINGS.items() if key not in AUDIT_KEYS]
    return "\n".join([
        "| key | type | meaning |", "| --- | --- | --- |", *core, "",
        "Keys some events add, after the keys above:", "",
        "| key | type | meaning | events |", "| --- | --- | --- | --- |", *extra, ""])


def events_table() -> str:
    rows = []
    for event, record in RECORDS.items():
        when = " ".join((record.__doc__ or "").split())
        keys = declared(record)
        core = " ".join(f"`{k}`" for k in keys if k in AUDIT_KEYS)
        own = " ".join(f"`{k}`" for k in keys if k not in AUDIT_KEYS) or "none"
        rows.append(f"| `{event}` | {_cell(when)} | {core} | {own} |")
    return "\n".join(["| event | when | core keys it fills | its own keys |",
                      "| --- | --- | --- | --- |", *rows, ""])


SECTIONS: dict[str, Callable[[], str]] = {"keys": keys_table, "events": events_table}


def regions(text: str) -> list[str]:
    """The names of the generated regions in a document, in order."""
    return [match["name"] for match in REGION.finditer(text)]


def render(text: str) -> str:
    """The document with every generated region made current; the rest untouched."""
    def fill(match: re.Match[str]) -> str:
        return match.group(1) + SECTIONS[match["name"]]() + match.group(4)
    return REGION.sub(fill, text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gateway.audit.doc",
                                     description="regenerate docs/audit.md's key and event "
                                                 "tables from gateway/audit/records.py")
    parser.add_argument("file", nargs="?", default="docs/audit.md")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--write", metavar="FILE", help="rewrite FILE's generated tables")
    group.add_argument("--check", action="store_true", help="exit 1 when FILE is stale")
    args = parser.parse_args(argv)
    path = Path(args.write or args.file)
    text = path.read_text(encoding="utf-8")
    missing = set(SECTIONS) - set(regions(text))
    if missing:
        print(f"{path}: no generated region {', '.join(sorted(missing))}", file=sys.stderr)
        return 2
    fresh = render(text)
    if args.write:
        path.write_text(fresh, encoding="utf-8")
    elif args.check:
        if fresh != text:
            print(f"{path} is stale: {COMMAND}", file=sys.stderr)
            return 1
    else:
        sys.stdout.write(fresh)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
