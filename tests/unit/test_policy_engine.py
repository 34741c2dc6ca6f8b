"""The policy seam: plain views, named questions, fail closed, nothing personal on stdout."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.config.load import load_settings
from gateway.core.domain import Actor, Company, DirectorySnapshot, User
from gateway.policy.engine import QUESTIONS, REFUSAL_RULE, PolicyEngine, PolicyLoadError, ask
from gateway.policy.views import POLAR_CLASSES, POLAR_METHODS, PolarUser, polar_actor
from tests.support.gateway import ROOT

SECRET_WORDS = ("password", "hash", "secret", "token", "email", "mobile", "first_name",
                "last_name", "account_number", "ip_fence")




def _engine(policies: Path = ROOT / "policies", consent: bool = False) -> PolicyEngine:
    return PolicyEngine(policies, {"REQUIRE_CONSENT": consent})


def test_views_carry_no_secrets_and_no_methods() -> None:
    """Polar sees data only: no secret or contact field on any class, no callable but the
    declared questions, which answer from the view's own fields."""
    for name, cls in POLAR_CLASSES.items():
        fields = set(cls.__slots__)
        assert not [f for f in fields if any(w in f for w in SECRET_WORDS)], name
        public = [a for a in dir(cls) if not a.startswith("_") and a not in fields
                  and a not in POLAR_METHODS]
        assert public == [], f"{name} exposes {public}"


@pytest.mark.parametrize(("company", "expected"), [
    ("acme", True), ("globex", True), ("initech", False), (None, False), ("", False)])
def test_is_assigned_answers_like_the_list(company: str | None, expected: bool) -> None:
    carol = User("csr-carol", "", kind="staff", groups=("CSR",),
                 assigned_companies=("acme", "globex"))
    for view in (PolarUser(carol), polar_actor(Actor(carol), None)):
        assert view.is_assigned(company) is expected
        assert (company in view.assigned_companies) is expected


def test_reprs_show_usernames_only() -> None:
    """What Polar prints in errors names people by username, nothing else."""
    user = User("buyer-alice", "alice@acme.example", first_name="Alice", last_name="Anders",
                mobile="+1 555", account_number="ACME-1", company="acme", groups=("Buyer",))
    actor = polar_actor(Actor(User("csr-carol", "carol@example.com", first_name="Carol"),
                              user), None)
    text = repr(actor) + repr(PolarUser(user))
    assert text == "Principal(User(csr-carol) as User(buyer-alice))User(buyer-alice)"


def test_a_policy_that_answers_no_question_is_refused(tmp_path: Path) -> None:
    """A policy without a rule for every question the gateway asks does not load."""
    empty = tmp_path / "policies"
    empty.mkdir()
    (empty / "facts.polar").write_text('grant("Buyer", "storefront", "*");\n'
                                       "allow_page(_actor, _action, _page) if false;\n")
    with pytest.raises(PolicyLoadError) as err:
        _engine(empty)
    assert "allow_impersonation" in str(err.value) and "allow_page" not in str(err.value)


def test_no_matching_rule_means_deny(tmp_path: Path) -> None:
    """Rules that never hold deny: no grant, no impersonation, no admin area."""
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "none.polar").write_text("\n".join(
        f"{rule}(_a, _b, _c) if false;" if rule != "allow_impersonation" else
        f"{rule}(_a, _b) if false;" for rule in QUESTIONS) + "\n")
    engine = _engine(policies)
    alice = User("buyer-alice", "", company="acme", groups=("Buyer",))
    carol = User("csr-carol", "", kind="staff", groups=("CSR",), assigned_companies=("acme",))
    settings = load_settings(ROOT / "config" / "gateway.yaml")
    assert engine.page(Actor(alice), "view", settings.pages["storefront"]).reason == \
        "policy_denied"
    assert engine.impersonation(Actor(carol), alice).reason == "impersonation_not_allowed"
    assert not engine.admin(Actor(carol), "read", "users").allowed


def _people() -> DirectorySnapshot:
    """Would-be buyers in every combination of the facts the rules read, and a few staff."""
    companies = {"acme": Company("acme", "Acme"), "shut": Company("shut", "Shut", False, True),
                 "kind": Company("kind", "Kind", True)}
    users = {}
    for i, (kind, active, groups, company, consent) in enumerate(itertools.product(
            ("customer", "prospect", "staff"), (True, False),
            (("Buyer",), ("CSR",), ("Buyer", "Administrator"), ()),
            ("acme", "shut", "kind", None), (False, True))):
        users[f"u{i}"] = User(f"u{i}", "", kind=kind, active=active, groups=groups,
                              company=company, allow_assistance=consent)
    for active, assigned in itertools.product((True, False), (("acme",), ("acme", "shut",
                                                                         "kind"))):
        name = f"csr-{int(active)}-{len(assigned)}"
        users[name] = User(name, "", kind="staff", active=active, groups=("CSR",),
                           assigned_companies=assigned)
    users["admin"] = User("admin", "", kind="staff", groups=("Administrator",),
                          assigned_companies=("acme",))
    return DirectorySnapshot(1, users, companies, {n: i for i, n in enumerate(users, 1)})


@pytest.mark.parametrize("consent", [False, True], ids=["consent-off", "consent-on"])
def test_allow_and_refusal_agree_for_every_pair(consent: bool) -> None:
    """allow_impersonation decides, impersonation_refused names: for every pair of people
    (every combination of kind, status, groups, company flags, consent, assignment) a
    denial has a named reason and an allowed pair has none."""
    engine, people = _engine(consent=consent), _people()
    csrs = [u for n, u in people.users.items() if n.startswith(("csr-", "admin"))]
    seen = set()
    for csr, buyer in itertools.product(csrs, people.users.values()):
        decision = engine.impersonation(Actor(csr), buyer, people)
        refusal = ask(engine, REFUSAL_RULE, polar_actor(Actor(csr), people),
                      PolarUser(buyer, people), None)
        seen.add(decision.reason)
        assert decision.allowed == (not refusal), (csr, buyer)
        assert decision.reason != "impersonation_not_allowed", (csr, buyer)
    assert {"ok", "company_no_impersonation", "not_impersonator", "csr_inactive", "self",
            "buyer_inactive", "not_customer", "buyer_is_privileged", "not_assigned"} <= seen
    assert ("no_consent" in seen) == consent


def test_polar_log_stays_off_stdout(tmp_path: Path) -> None:
    """POLAR_LOG in the environment is ignored: decisions print nothing to stdout."""
    env = {**os.environ, "POLAR_LOG": "trace"}
    table = ROOT / "policies" / "tests" / "requirements.yaml"
    done = subprocess.run([sys.executable, "-m", "gateway", "policy", "test", str(table)],
                          env=env, capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "[oso]" not in done.stdout and "csr-carol" not in done.stdout
    assert "passed, 0 failed" in done.stdout and "POLAR_LOG is ignored" in done.stderr


def test_explain_trace_is_polars_own_log(capsys) -> None:
    """`explain --trace` shows Polar's query log for the deciding question, on demand."""
    from gateway.cli.main import main

    assert main(["policy", "explain", "--trace", "--user", "buyer-alice", "GET", "/cart"]) == 0
    out = capsys.readouterr().out
    assert "QUERY RULE: allow_page(Principal(User(buyer-alice) as None)" in out
    assert 'RULE: grant("Buyer", "cart", "*");' in out and "RESULT: SUCCESS" in out
    assert "POLAR_LOG" not in os.environ
