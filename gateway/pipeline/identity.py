"""Builds the identity headers the upstream trusts, after every inbound copy was removed."""

from __future__ import annotations

from gateway.core.domain import Actor
from gateway.core.settings import HeaderNames
from gateway.services.assertion import AssertionSigner
from gateway.sessions.store import Session


def identity_headers(names: HeaderNames, actor: Actor | None, session: Session | None,
                     request_id: str, signer: AssertionSigner,
                     policy_rev: str) -> list[tuple[str, str]]:
    headers = [(names.request_id, request_id)]
    if actor is None or session is None:
        return headers
    user = actor.effective
    groups = list(user.groups)
    headers += [(names.user, user.username), (names.company, user.company or ""),
                (names.groups, ",".join(groups))]
    csr = actor.user.username if actor.acting_as else None
    reason = actor.impersonation.reason if actor.impersonation and csr else None
    if csr:
        headers.append((names.impersonator, csr))
    token = signer.sign(sub=user.username, company=user.company, csr=csr, sid=session.id,
                        reason=reason, policy_rev=policy_rev, groups=groups,
                        amr=session.amr if csr else (), acr=session.acr if csr else "",
                        auth_time=int(session.auth_time) if csr and session.auth_time else None,
                        mode=actor.impersonation.mode if actor.impersonation and csr else None)
    headers.append((names.assertion, token))
    return headers
