"""Compiled route table: canonical path and method -> the (page, action) the policy decides on."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from gateway.core.errors import MethodNotAllowed, NotFound
from gateway.core.settings import RouteSpec

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
ONE, REST = "*", "**"
# What a lenient shop may ignore at the end of a segment: trailing dots and spaces, a path
# parameter, a format suffix (IIS and Rails answer /account/password.json as the page).
_LENIENT_TAIL = re.compile(r"(?:[.\s]+|;.*|\.[^./]{1,16})$")


@dataclass(frozen=True, slots=True)
class Route:
    spec: RouteSpec
    segments: tuple[str, ...]
    methods: frozenset[str]

    def action_for(self, method: str) -> str:
        if self.spec.action:
            return self.spec.action
        return "view" if method in SAFE_METHODS else "submit"

    def state_changing(self, method: str) -> bool:
        if self.spec.state_changing is not None:
            return self.spec.state_changing
        return method not in SAFE_METHODS


@dataclass(frozen=True, slots=True)
class Match:
    route: Route
    page: str
    action: str


def split(pattern: str) -> tuple[str, ...]:
    return tuple(part for part in pattern.split("/") if part)


def pattern_problem(spec: RouteSpec) -> str | None:
    if not spec.path.startswith("/"):
        return f'path must start with "/": {spec.path!r}'
    segments = split(spec.path)
    if REST in segments[:-1]:
        return '"**" may only end a pattern'
    bad = [m for m in spec.methods if m not in KNOWN_METHODS]
    if bad:
        return f"unknown method {bad[0]!r} (allowed: {', '.join(sorted(KNOWN_METHODS))})"
    return None


def _seg_key(segment: str, case_sensitive: bool) -> str:
    if segment.startswith("{") and segment.endswith("}"):
        return ONE
    return segment if case_sensitive else segment.lower()


def compile_route(spec: RouteSpec) -> Route:
    segments = tuple(_seg_key(s, spec.case_sensitive) for s in split(spec.path))
    methods = set(spec.methods)
    if "GET" in methods:
        methods.add("HEAD")  # HEAD is decided exactly as GET
    return Route(spec, segments, frozenset(methods))


def overlaps(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
    """Could one path match both patterns? (`*` is one segment, a final `**` one or more.)"""
    if not a or not b:
        return not a and not b
    if REST in (a[0], b[0]):
        return True
    if a[0] != b[0] and ONE not in (a[0], b[0]):
        return False
    return overlaps(a[1:], b[1:])


def conflicts(routes: list[Route]) -> list[tuple[int, int]]:
    """Pairs of routes that share a method and could match one path: ambiguous, refused."""
    found = []
    for i, a in enumerate(routes):
        for j in range(i):
            b = routes[j]
            folded = not (a.spec.case_sensitive and b.spec.case_sensitive)
            sa = tuple(s.lower() for s in a.segments) if folded else a.segments
            sb = tuple(s.lower() for s in b.segments) if folded else b.segments
            if a.spec.fallback != b.spec.fallback:
                continue  # a fallback only answers when nothing else matched
            if a.methods & b.methods and overlaps(sa, sb):
                found.append((j, i))
    return found


class RouteTable:
    """Exact routes in a dict, patterns scanned in order; at most one can match (checked)."""

    def __init__(self, routes: list[Route]) -> None:
        self.routes = routes
        self._exact: dict[str, list[Route]] = {}
        self._patterns: list[Route] = []
        self._fallbacks = [r for r in routes if r.spec.fallback]
        fallback_pages = {r.spec.page for r in self._fallbacks}
        self._guarded = [tuple(s.casefold() for s in r.segments) for r in routes
                         if not r.spec.fallback and r.segments
                         and r.spec.page not in fallback_pages]
        self._memo: dict[tuple[str, str], Match] = {}
        for route in routes:
            if route.spec.fallback:
                continue
            if all(s not in (ONE, REST) for s in route.segments):
                key = "/" + "/".join(route.segments)
                self._exact.setdefault(key if route.spec.case_sensitive else key.lower(),
                                       []).append(route)
            else:
                self._patterns.append(route)

    def match(self, method: str, path: str) -> Match:
        """The one route for this request; answers are remembered (routes never change)."""
        key = (method, path)
        found = self._memo.get(key)
        if found is None:
            found = self._match(method, path)
            if len(self._memo) > 50_000:
                self._memo.clear()
            self._memo[key] = found
        return found

    def _match(self, method: str, path: str) -> Match:
        candidates = self._candidates(path)
        found = self._for_method(candidates, method)
        if found is not None:
            return found
        if candidates:  # a route's unlisted method is refused, never a fallback page
            allowed = sorted(set().union(*(r.methods for r in candidates)))
            raise MethodNotAllowed("method_not_allowed", detail=method, allow=tuple(allowed))
        fallbacks = self._fallback_candidates(path)
        if fallbacks and self._shadows(path):
            raise NotFound("protected_path_variant", detail=path[:200])
        found = self._for_method(fallbacks, method)
        if found is not None:
            return found
        raise NotFound("no_route")

    def _shadows(self, path: str) -> bool:
        """Is this another spelling of (or a path under) a route the fallback must not
        answer for? Compared as a lenient shop would: compatibility forms folded, case
        folded, lenient tails cut, at every depth."""
        segments = lenient_segments(path)
        for depth in range(len(segments), 0, -1):
            head = segments[:depth]
            if any(_matches(pattern, head) for pattern in self._guarded):
                return True
        return False

    @staticmethod
    def _for_method(routes: list[Route], method: str) -> Match | None:
        for route in routes:
            if method in route.methods:
                return Match(route, route.spec.page, route.action_for(method))
        return None

    def _fallback_candidates(self, path: str) -> list[Route]:
        trailing = path.endswith("/") and path != "/"
        segments = split(path)
        return [r for r in self._fallbacks if self._accepts(r, segments, trailing)]

    def _candidates(self, path: str) -> list[Route]:
        trailing = path.endswith("/") and path != "/"
        segments = split(path)
        key = "/" + "/".join(segments)
        found = [r for r in self._exact.get(key, []) + self._exact.get(key.lower(), [])
                 if self._accepts(r, segments, trailing)]
        found += [r for r in self._patterns if self._accepts(r, segments, trailing)]
        return list(dict.fromkeys(found))

    @staticmethod
    def _accepts(route: Route, segments: tuple[str, ...], trailing: bool) -> bool:
        if trailing and route.spec.strict_slash:
            return False
        if not route.spec.case_sensitive:
            segments = tuple(s.lower() for s in segments)
        return _matches(route.segments, segments)


def lenient_segments(path: str) -> tuple[str, ...]:
    """The path's segments as a shop that ignores case, compatibility forms and format
    suffixes would read them (NFKC can turn a fullwidth solidus into a slash: fold first)."""
    folded = unicodedata.normalize("NFKC", path).casefold()
    folded = "".join(c for c in folded if unicodedata.category(c) != "Cf")
    out = []
    for segment in split(folded):
        for _ in range(8):  # "password.json." and the like: cut until nothing changes
            cut = _LENIENT_TAIL.sub("", segment)
            if cut == segment or not cut:
                break
            segment = cut
        out.append(segment)
    return tuple(out)


def _matches(pattern: tuple[str, ...], segments: tuple[str, ...]) -> bool:
    for i, part in enumerate(pattern):
        if part == REST:
            return len(segments) > i
        if i >= len(segments) or (part != ONE and part != segments[i]):
            return False
    return len(segments) == len(pattern)
