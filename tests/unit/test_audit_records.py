"""Typed audit records: every event has one, strict mode and mypy hold lines to it, docs follow."""

from __future__ import annotations

import ast
import io
import re
import sys
import typing
from pathlib import Path
from typing import Any

import orjson
import pytest

import gateway.audit.log as audit_log
from gateway.app.build import audit_log as build_audit_log
from gateway.audit import AUDIT_KEYS, EVENTS, AuditConfig, AuditLog
from gateway.audit import doc as audit_doc
from gateway.audit.records import (
    MEANINGS,
    RECORDS,
    STRICT_ENV,
    WRITTEN,
    Emit,
    Event,
    UndeclaredAuditKey,
    Written,
    check,
    declared,
)
from tests.support.gateway import ROOT
from tests.support.gateway import test_settings as settings_for

DOCS = ROOT / "docs" / "audit.md"


def _emitted() -> dict[str, str]:
    """Event names the code writes: `.emit("x", ...)`, `emit(gw, ctx, "x", ...)`,
    `announce(gw, ctx, "x", ...)`, `event="x"` arguments and the values of a module's
    `EVENTS` mapping (a status -> its event), each with the first place it is written."""
    found: dict[str, str] = {}
    for path in sorted((ROOT / "gateway").rglob("*.py")):
        where = path.relative_to(ROOT)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.AnnAssign | ast.Assign) and isinstance(node.value, ast.Dict):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                if any(isinstance(t, ast.Name) and t.id == "EVENTS" for t in targets):
                    for value in node.value.values:
                        if isinstance(value, ast.Constant) and isinstance(value.value, str):
                            found.setdefault(value.value, f"{where}:{node.lineno}")
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            values = [kw.value for kw in node.keywords if kw.arg == "event"]
            if name in ("emit", "announce"):
                values += node.args[:3]
            for value in values:
                if isinstance(value, ast.Constant) and isinstance(value.value, str) \
                        and re.fullmatch(r"[a-z][a-z_]*", value.value):
                    found.setdefault(value.value, f"{where}:{node.lineno}")
    return found


EMITTED = _emitted()


def test_the_scan_finds_the_emit_calls() -> None:
    """The scan below is not vacuous: it finds the events written in several modules."""
    assert {"request", "request_intent", "login", "admin_change", "audit_start",
            "impersonation_start", "impersonation_end"} <= set(EMITTED)


@pytest.mark.parametrize("event", sorted(EMITTED), ids=str)
def test_every_emitted_event_has_a_record(event: str) -> None:
    """An event written anywhere in gateway/ is declared in RECORDS."""
    assert event in RECORDS, f"{EMITTED[event]} writes {event!r}, which has no record"


@pytest.mark.parametrize("event", EVENTS, ids=str)
def test_every_record_is_written_somewhere(event: str) -> None:
    """No record for an event nothing writes."""
    assert event in EMITTED


def test_event_literal_lists_the_records_in_order() -> None:
    """`Event` (mypy's list of names) and RECORDS (the runtime's) are the same events."""
    assert typing.get_args(Event) == EVENTS == tuple(RECORDS)


def _overloads() -> dict[str, type[Any]]:
    """Emit's overloads as written (typing keeps no overloads of a body-less protocol)."""
    module = sys.modules[Emit.__module__]
    tree = ast.parse(Path(module.__file__ or "").read_text(encoding="utf-8"))
    (emit,) = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Emit"]
    out: dict[str, type[Any]] = {}
    for fn in emit.body:
        if isinstance(fn, ast.FunctionDef) and fn.name == "__call__":
            event = typing.get_args(eval(ast.unparse(fn.args.posonlyargs[1].annotation),
                                         {"Literal": typing.Literal}))[0]
            assert fn.args.kwarg is not None
            unpacked = fn.args.kwarg.annotation
            assert isinstance(unpacked, ast.Subscript) and ast.unparse(unpacked.value) == "Unpack"
            out[event] = getattr(module, ast.unparse(unpacked.slice))
    return out


@pytest.mark.parametrize("event", EVENTS, ids=str)
def test_every_event_has_its_overload(event: str) -> None:
    """`Emit` types each event's keys with that event's own record."""
    assert _overloads().get(event) is RECORDS[event]


def test_emit_is_typed_by_the_records() -> None:
    """AuditLog.emit is declared as Emit: the overloads are what mypy checks calls against."""
    assert AuditLog.__annotations__["emit"] == "Emit"
    assert set(_overloads()) == set(RECORDS)


ALL_KEYS = sorted(audit_doc.key_types())


@pytest.mark.parametrize("key", ALL_KEYS, ids=str)
def test_every_key_has_a_meaning_and_one_type(key: str) -> None:
    """A key means one thing (MEANINGS) and has one type, whichever record declares it."""
    assert MEANINGS.get(key), f"{key!r}: add its meaning to MEANINGS"
    types = audit_doc.key_types()[key]
    assert len(types) == 1, f"{key!r} is declared as {sorted(types)}"
    assert audit_doc.type_words(next(iter(types)))


def test_every_meaning_is_of_a_declared_key() -> None:
    """MEANINGS holds no key that no record declares."""
    assert set(MEANINGS) - set(ALL_KEYS) == set()


def test_core_keys_lead_the_meanings_in_line_order() -> None:
    """MEANINGS starts with the contract's keys, in AUDIT_KEYS order."""
    assert tuple(MEANINGS)[:len(AUDIT_KEYS)] == AUDIT_KEYS
    assert audit_log.AUDIT_KEYS is AUDIT_KEYS and audit_log.EVENTS is EVENTS
    assert set(WRITTEN) <= set(AUDIT_KEYS) and tuple(Written.__annotations__) == WRITTEN


@pytest.mark.parametrize("event", EVENTS, ids=str)
def test_records_leave_the_log_its_own_keys(event: str) -> None:
    """No record lets a caller give ts, event, seq, prev_hash or hash: the log writes them."""
    assert set(declared(RECORDS[event])) & set(WRITTEN) == set()


@pytest.mark.parametrize("event", EVENTS, ids=str)
def test_every_record_says_when_it_is_written(event: str) -> None:
    """The record's docstring is the docs' "when" column."""
    assert (RECORDS[event].__doc__ or "").strip()


REFUSED = [
    ("misspelled-key", "request", {"usr": "buyer-alice"}, "'usr'"),
    ("core-key-of-another-event", "policy_reload", {"status": 200}, "'status'"),
    ("own-key-of-another-event", "login", {"target": "users"}, "'target'"),
    ("secret-named-key", "request", {"cookie": "x"}, "'cookie'"),
    ("two-keys", "audit_start", {"zz": 1, "aa": 2}, "'aa', 'zz'"),
    ("log-written-key", "request", {"seq": 3}, "'seq'"),
    ("unknown-event", "impersonation_teleported", {"user": "x"}, "has no record"),
]


@pytest.mark.parametrize(("event", "fields", "words"), [r[1:] for r in REFUSED],
                         ids=[r[0] for r in REFUSED])
def test_strict_mode_refuses_undeclared(tmp_path: Path, event: str, fields: dict[str, Any],
                                        words: str) -> None:
    """A strict log raises naming the event and the key, and writes nothing."""
    log = AuditLog(AuditConfig(path=str(tmp_path / "a.jsonl")), strict=True)
    log.open()
    with pytest.raises(UndeclaredAuditKey) as raised:
        log.emit(event, **fields)  # type: ignore[call-overload]
    log.close()
    assert repr(event) in str(raised.value) and words in str(raised.value)
    assert [orjson.loads(raw)["event"] for raw in (tmp_path / "a.jsonl").read_bytes()
            .splitlines()] == ["audit_start"]


def test_production_writes_undeclared_keys_redacted(tmp_path: Path) -> None:
    """Without strict mode a line is never refused: an unknown key is written (redacted)."""
    log = AuditLog(AuditConfig(path=str(tmp_path / "a.jsonl")))
    log.open()
    record = log.emit("request", cookie="s", usr="x")  # type: ignore[call-overload]
    log.close()
    assert (record["cookie"], record["usr"]) == ("[redacted]", "x")


SAMPLES = {"string": "x", "string or null": "x", "integer": 1, "integer or null": 1,
           "number": 1.5, "number or null": 1.5, "boolean": True, "boolean or null": True,
           "list of strings or null": ["pwd"], "list of strings": ["email"],
           "object of counts": {"card": 2}, "any JSON value": {"a": 1},
           "`allow` or `deny` or null": "deny"}


@pytest.mark.parametrize("event", EVENTS, ids=str)
def test_strict_mode_writes_every_declared_key(tmp_path: Path, event: str) -> None:
    """Every key a record declares is accepted; the core keys keep their order, then the rest."""
    types = {key: audit_doc.type_words(min(t)) for key, t in audit_doc.key_types().items()}
    fields = {key: SAMPLES[types[key]] for key in declared(RECORDS[event])}
    log = AuditLog(AuditConfig(path=str(tmp_path / "a.jsonl")), strict=True)
    log.open()
    log.emit(event, **fields)
    log.close()
    line = orjson.loads((tmp_path / "a.jsonl").read_bytes().splitlines()[-1])
    extra = [key for key in fields if key not in AUDIT_KEYS]
    assert list(line) == [*AUDIT_KEYS[:-3], *extra, *AUDIT_KEYS[-3:]]
    assert all(line[key] == value for key, value in fields.items())


# Written by the code before the records existed (fixed clock, stdout sink): the format and
# the key order are the contract, so these bytes must not change.
BEFORE = [
    b'{"ts":"2026-12-03T15:00:00.000Z","event":"request","request_id":"r1","user":"buyer-alice",'
    b'"actor":"csr-carol","csr":"csr-carol","company":"acme","method":"POST","path":"/checkout?'
    b'token=[redacted]","page":"checkout","action":"order","decision":"allow","reason":"ok",'
    b'"status":303,"duration_ms":1.5,"client_ip":"10.0.0.1","policy_rev":"p1","impersonation_id'
    b'":"i1","impersonation_reason":"T-7","trace_id":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","outcome"'
    b':"completed","bytes_sent":10,"state_changing":true,"detail":"d","auth_method":"password",'
    b'"amr":["pwd"],"auth_time":1700000000,"seq":0,"prev_hash":"0000000000000000000000000000000'
    b'000000000000000000000000000000000","hash":"1b2b263455cc730246a081755dbe44b4166ec3f88e6a163'
    b'469f0806cd795016c"}\n',
    b'{"ts":"2026-12-03T15:00:00.000Z","event":"policy_reload","request_id":null,"user":null,'
    b'"actor":null,"csr":null,"company":null,"method":null,"path":null,"page":null,"action":null,'
    b'"decision":null,"reason":"ok","status":null,"duration_ms":null,"client_ip":null,'
    b'"policy_rev":"p2","impersonation_id":null,"impersonation_reason":null,"trace_id":null,'
    b'"trigger":"sighup","detail":"p1 -> p2","seq":1,"prev_hash":"1b2b263455cc730246a081755dbe44'
    b'b4166ec3f88e6a163469f0806cd795016c","hash":"88f8bd23878cc401f3cda1bc168d63bed71741fb2c2654'
    b'8a41729f47b31d62d5"}\n',
    b'{"ts":"2026-12-03T15:00:00.000Z","event":"admin_change","request_id":"r2","user":"buyer-bob'
    b'","actor":"admin-ann","csr":null,"company":null,"method":null,"path":null,"page":null,'
    b'"action":"deactivate","decision":"allow","reason":"ok","status":null,"duration_ms":null,'
    b'"client_ip":null,"policy_rev":null,"impersonation_id":null,"impersonation_reason":null,'
    b'"trace_id":null,"target":"users","before":{"active":true},"after":{"active":false},"seq":2,'
    b'"prev_hash":"88f8bd23878cc401f3cda1bc168d63bed71741fb2c26548a41729f47b31d62d5","hash":"aa8'
    b'dd244b7b22a5131510c9ed70b074a21e7c6a9e619d5fa5ec891e5db617d1b"}\n',
]


class _Stdout:
    def __init__(self) -> None:
        self.buffer = io.BytesIO()

    def flush(self) -> None:
        pass


@pytest.mark.parametrize("strict", [False, True], ids=["production", "strict"])
def test_lines_are_byte_for_byte_as_before(monkeypatch: pytest.MonkeyPatch,
                                           strict: bool) -> None:
    """The same calls write the same bytes as before the records: keys, order, values, hash."""
    out = _Stdout()
    monkeypatch.setattr(audit_log, "_now", lambda: "2026-12-03T15:00:00.000Z")
    monkeypatch.setattr(sys, "stdout", out)
    log = AuditLog(AuditConfig(sink="stdout"), strict=strict)
    log.emit("request", request_id="r1", user="buyer-alice", actor="csr-carol",
             csr="csr-carol", company="acme", impersonation_id="i1", impersonation_reason="T-7",
             method="POST", path="/checkout?token=x", page="checkout", action="order",
             decision="allow", reason="ok", status=303, duration_ms=1.5, client_ip="10.0.0.1",
             policy_rev="p1", outcome="completed", bytes_sent=10, state_changing=True,
             trace_id="a" * 32, detail="d", auth_method="password", amr=["pwd"],
             auth_time=1700000000)
    log.emit("policy_reload", reason="ok", policy_rev="p2", trigger="sighup", detail="p1 -> p2")
    log.emit("admin_change", request_id="r2", actor="admin-ann", user="buyer-bob",
             target="users", action="deactivate", before={"active": True},
             after={"active": False}, decision="allow", reason="ok")
    assert out.buffer.getvalue().splitlines(keepends=True) == BEFORE


@pytest.mark.parametrize(("value", "strict"), [("1", True), ("0", False), (None, False)],
                         ids=["on", "off", "unset"])
def test_the_gateway_log_is_strict_when_the_environment_says(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str | None,
        strict: bool) -> None:
    """CSRGW_AUDIT_STRICT=1 (the test suite) makes the gateway's log strict; else it is not."""
    if value is None:
        monkeypatch.delenv(STRICT_ENV, raising=False)
    else:
        monkeypatch.setenv(STRICT_ENV, value)
    log = build_audit_log(settings_for(tmp_path, "http://127.0.0.1:9"))
    assert log.strict is strict
    assert (log.emit == log._checked) is strict


def test_check_names_the_record_to_edit() -> None:
    """The message says where the record lives, so the fix is one look away."""
    with pytest.raises(UndeclaredAuditKey, match=r"'login'.*'usr'.*Login \(gateway/audit/"):
        check("login", {"usr": "x"})
    check("login", {"user": "x", "break_glass": True})


def test_audit_doc_tables_are_current() -> None:
    """docs/audit.md's generated tables are what `python -m gateway.audit.doc` writes today."""
    text = DOCS.read_text(encoding="utf-8")
    assert audit_doc.regions(text) == ["keys", "events"]
    assert audit_doc.render(text) == text, f"docs/audit.md is stale: {audit_doc.COMMAND}"


STALE = [
    ("fresh", None, [], 0),
    ("stale", "| `ts` |", ["--check"], 1),
    ("no-region", "<!-- generated events", ["--check"], 2),
]


@pytest.mark.parametrize(("cut", "args", "code"), [s[1:] for s in STALE],
                         ids=[s[0] for s in STALE])
def test_doc_command_checks_and_writes(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                       cut: str | None, args: list[str], code: int) -> None:
    """--check fails on a stale table or a missing region; --write makes a stale file current."""
    text = DOCS.read_text(encoding="utf-8")
    copy = tmp_path / "audit.md"
    copy.write_text(text.replace(cut, cut[:2] + "x", 1) if cut else text, encoding="utf-8")
    assert audit_doc.main([str(copy), *args]) == code
    if code == 1:
        assert audit_doc.main(["--write", str(copy)]) == 0
        assert copy.read_text(encoding="utf-8") == text
    if code == 0:
        assert capsys.readouterr().out == text


MYPY_CASES = [
    ("misspelled-key", 'emit("login", usr="x")', "usr"),
    ("wrong-value-type", 'emit("request", status="200")', "call-overload"),
    ("key-of-another-event", 'emit("policy_reload", status=200)', "call-overload"),
    ("unknown-event", 'emit("impersonation_teleported", user="x")', "call-overload"),
    ("bad-decision", 'emit("login", decision="allowed")', "call-overload"),
    ("declared", 'emit("request", user="a", status=200, decision="allow")', None),
    ("plain-dict", 'emit("request", **fields)', None),
    ("impersonation-union", "emit(which, impersonation_id=\"i\", amr=[\"pwd\"])", None),
]


def test_mypy_holds_calls_to_the_records(tmp_path: Path) -> None:
    """A misspelled key, a wrong type, another event's key or an unknown event is a type error;
    declared calls, a plain dict and a union of events with the same keys pass."""
    from mypy import api

    body = "\n".join(f"    {code}" for _, code, _ in MYPY_CASES)
    source = tmp_path / "calls.py"
    source.write_text(
        "from typing import Any\n"
        "from gateway.audit.records import Emit, ImpersonationEvent\n\n\n"
        "def calls(emit: Emit, fields: dict[str, Any], which: ImpersonationEvent) -> None:\n"
        f"{body}\n", encoding="utf-8")
    out, _, _ = api.run(["--strict", "--follow-imports=silent", "--no-error-summary",
                         "--show-error-codes", "--cache-dir", str(tmp_path / "cache"),
                         str(source)])
    errors = [line for line in out.splitlines() if ": error:" in line]
    for number, (name, _, expect) in enumerate(MYPY_CASES, start=6):
        mine = " ".join(e for e in errors if f"calls.py:{number}:" in e)
        if expect is None:
            assert not mine, f"{name}: {mine}"
        else:
            assert expect in mine, f"{name}: no error on line {number}: {errors}"
