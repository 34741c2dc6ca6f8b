"""The container image, without a Docker engine: its file system laid out from the Dockerfile,
its command run as the image's user, the CSR flow through it."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.support.gateway import ROOT
from tests.support.services import free_port

PASSWORD = "layout-test-pass-7"  # not the demo password: the image must not know that one


@dataclass
class Stage:
    """One FROM ... stage of the Dockerfile, as the test needs it."""

    base: str
    env: dict[str, str] = field(default_factory=dict)
    copies: list[tuple[str | None, list[str], str]] = field(default_factory=list)
    runs: list[str] = field(default_factory=list)
    volumes: list[str] = field(default_factory=list)
    workdir: str = "/"
    user: str = "root"
    expose: list[str] = field(default_factory=list)
    healthcheck: list[str] = field(default_factory=list)
    cmd: list[str] = field(default_factory=list)


def _instructions(text: str) -> Iterator[tuple[str, str]]:
    joined = re.sub(r"\\\n", " ", text)
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            yield word.upper(), rest.strip()


def _exec_form(rest: str) -> list[str]:
    return list(json.loads(rest)) if rest.startswith("[") else ["/bin/sh", "-c", rest]


def parse_dockerfile(text: str) -> list[Stage]:
    stages: list[Stage] = []
    for word, rest in _instructions(text):
        if word == "FROM":
            stages.append(Stage(base=rest.split()[0]))
            continue
        stage = stages[-1]
        if word == "ENV":
            stage.env.update(dict(part.split("=", 1) for part in shlex.split(rest)))
        elif word == "COPY":
            parts = shlex.split(rest)
            source = next((p.split("=", 1)[1] for p in parts if p.startswith("--from=")), None)
            paths = [p for p in parts if not p.startswith("--")]
            stage.copies.append((source, paths[:-1], paths[-1]))
        elif word == "RUN":
            stage.runs.append(rest)
        elif word == "VOLUME":
            stage.volumes += _exec_form(rest) if rest.startswith("[") else rest.split()
        elif word == "WORKDIR":
            stage.workdir = rest
        elif word == "USER":
            stage.user = rest
        elif word == "EXPOSE":
            stage.expose += rest.split()
        elif word == "HEALTHCHECK":
            stage.healthcheck = _exec_form(rest.split("CMD", 1)[1].strip())
        elif word == "CMD":
            stage.cmd = _exec_form(rest)
    return stages


@dataclass
class Image:
    """The laid-out file system: `root` stands for `/` (no chroot: the test prefixes)."""

    root: Path
    final: Stage
    uid: int
    gid: int

    def path(self, image_path: str) -> Path:
        return self.root / image_path.lstrip("/")

    def map(self, value: str) -> str:
        """An image path (or PATH list) as seen from outside the layout."""
        for prefix in ("/opt/", "/etc/", "/var/"):
            value = re.sub(rf"(^|:){prefix}", lambda m, p=prefix: m.group(1) + str(
                self.root) + p, value)
        return value

    def environment(self, **overrides: str) -> dict[str, str]:
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}
        env.update({k: self.map(v) for k, v in self.final.env.items()})
        return {**env, **overrides}

    def as_user(self, argv: list[str]) -> list[str]:
        return ["setpriv", f"--reuid={self.uid}", f"--regid={self.gid}", "--clear-groups",
                *argv]

    def executable(self, name: str, env: dict[str, str]) -> str:
        found = shutil.which(name, path=env["PATH"])
        assert found, f"{name} not on the image's PATH {env['PATH']}"
        return found


def _base_python() -> str:
    """An interpreter the service user may run, as the base image's /usr/local/bin one is
    (pyenv's under /root is not reachable for uid 10001)."""
    for candidate in ("/usr/local/bin/python3.12", "/usr/bin/python3.12", "/usr/bin/python3"):
        if os.access(candidate, os.X_OK):
            return candidate
    return sys.executable


def _build_wheel(stage: Stage, work: Path) -> Path:
    """The build stage: its COPY sources into a clean tree, `pip wheel` from there."""
    src = work / "src"
    for _from, sources, dest in stage.copies:
        for source in sources:
            target = src / dest if dest not in ("./", ".") else src
            if (ROOT / source).is_dir():
                shutil.copytree(ROOT / source, target, ignore=shutil.ignore_patterns(
                    "__pycache__"))
            else:
                target.mkdir(parents=True, exist_ok=True)
                shutil.copy(ROOT / source, target / Path(source).name)
    wheels = work / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                    "--wheel-dir", str(wheels), str(src)],
                   check=True, capture_output=True)
    (wheel,) = wheels.glob("csr_gateway-*.whl")
    return wheel


def _lay_out(work: Path) -> Image:
    build, final = parse_dockerfile((ROOT / "Dockerfile").read_text())[-2:]
    assert final.base.startswith("python:3.12-slim"), final.base
    uid, _, gid = final.user.partition(":")
    image = Image(work / "root", final, int(uid), int(gid or uid))
    image.root.mkdir()
    wheel = _build_wheel(build, work)
    for source, sources, dest in final.copies:
        if source is not None:  # the build stage's virtualenv, rebuilt where it will live
            assert source == "build" and sources == [dest], "only the venv comes from build"
            assert any(f"python -m venv {dest}" in run for run in build.runs)
            venv = image.path(dest)
            subprocess.run([_base_python(), "-m", "venv", str(venv)], check=True)
            subprocess.run([str(venv / "bin" / "pip"), "install", "-q", str(wheel)],
                           check=True, capture_output=True)
            continue
        for item in sources:
            target = image.path(dest)
            target.parent.mkdir(parents=True, exist_ok=True)
            if (ROOT / item).is_dir():
                shutil.copytree(ROOT / item, target, dirs_exist_ok=True)
            else:
                shutil.copy(ROOT / item, target)
    # The final stage's RUN: the service user and its one writable directory, the volume.
    (run,) = final.runs
    for volume in final.volumes:
        assert f"install -d -o {image.uid} -g {image.gid}" in run and volume in run
    for path in [image.root, *image.root.rglob("*")]:
        if not path.is_symlink():
            os.chown(path, 0, 0)
            path.chmod(path.stat().st_mode & ~(stat.S_IWGRP | stat.S_IWOTH) | stat.S_IRGRP
                       | stat.S_IROTH | (stat.S_IXGRP | stat.S_IXOTH if path.is_dir() else 0))
    for volume in final.volumes:
        state = image.path(volume)
        state.mkdir(parents=True, exist_ok=True)
        os.chown(state, image.uid, image.gid)
        state.chmod(0o750)
    return image


def _substitute(value: Any, env: dict[str, str]) -> Any:
    if isinstance(value, dict):
        return {k: _substitute(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, env) for v in value]
    if isinstance(value, str):
        return re.sub(r"\$\{(\w+)\}", lambda m: env[m.group(1)], value)
    return value


def _render_config(image: Image, port: int) -> Path:
    """What `docker run -e ...` gives the baked-in config: ${NAME} from the environment;
    the test adds only what a shared machine needs (a loopback address, a free port)."""
    config = image.path(image.final.cmd[image.final.cmd.index("--config") + 1])
    env = image.environment(CSRGW_UPSTREAM_URL="http://shop.invalid")
    data = _substitute(yaml.safe_load(config.read_text()), env)
    assert "seed" not in data["directory"], "the image must not seed a directory"
    data["listen"] = {"host": "127.0.0.1", "port": port}
    sqlite = "sqlite+aiosqlite:///"
    assert data["directory"]["url"].startswith(sqlite + "/var/lib/csr-gateway/")
    data["directory"]["url"] = sqlite + image.map(data["directory"]["url"][len(sqlite):])
    for section, key in (("assertion", "keys_dir"), ("audit", "path")):
        data[section][key] = image.map(data[section][key])
    data["state_dir"] = image.map(data["state_dir"])
    data["policies_dir"] = image.map(data["policies_dir"])
    config.chmod(0o644)
    config.write_text(yaml.safe_dump(data, sort_keys=False))
    return config


def _seed(work: Path) -> Path:
    """The operator's own users, as a file mounted read-only (hashes, no plain passwords)."""
    from argon2 import PasswordHasher

    hashed = PasswordHasher().hash(PASSWORD)
    seed = {"companies": [{"id": "acme", "name": "Acme Corp"}], "users": [
        {"username": "csr-carol", "email": "carol@example.com", "kind": "staff",
         "groups": ["CSR"], "assigned_companies": ["acme"], "password_hash": hashed},
        {"username": "buyer-alice", "email": "alice@acme.example", "kind": "customer",
         "first_name": "Alice", "last_name": "Anders", "company": "acme",
         "account_number": "ACME-0001", "groups": ["Buyer"], "password_hash": hashed}]}
    path = work / "seed" / "users.yaml"
    path.parent.mkdir()
    path.write_text(yaml.safe_dump(seed))
    path.parent.chmod(0o755)
    path.chmod(0o644)
    return path


@pytest.fixture(scope="module")
def image() -> Iterator[Image]:
    work = Path(tempfile.mkdtemp(prefix="csrgw-image-"))
    work.chmod(0o755)
    try:
        yield _lay_out(work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


class _Shop:
    """The demo shop, recording the identity headers each request reached it with."""

    def __init__(self) -> None:
        self.seen: list[dict[str, str]] = []

    @web.middleware
    async def record(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.seen.append(dict(request.headers))
        return await handler(request)


def test_image_runs_as_non_root_and_carries_no_demo_passwords(image: Image) -> None:
    """Every file of the image is root's and read-only to the service user, except the state
    volume; nothing under /etc/csr-gateway knows a demo password."""
    assert image.uid != 0 and image.final.user != "root"
    assert image.final.volumes == ["/var/lib/csr-gateway"]
    for path in image.root.rglob("*"):
        if path.is_symlink():
            continue
        info = path.stat()
        writable = info.st_mode & (stat.S_IWGRP | stat.S_IWOTH) or info.st_uid == image.uid
        assert not writable or path == image.path("/var/lib/csr-gateway"), path
    for path in image.path("/etc/csr-gateway").rglob("*"):
        assert path.is_dir() or b"demo-pass-1" not in path.read_bytes(), path


async def test_image_command_serves_the_csr_flow(image: Image) -> None:
    """The image's CMD, as uid 10001 with only the state volume writable, seeded by
    `directory import`, serves login -> impersonate -> shop page; the shop sees the buyer and
    the CSR; state (keys, audit, SQLite) lands in the volume and nowhere else."""
    from gateway.demo.shop import create_shop_app

    port = free_port()
    config = _render_config(image, port)
    shop_recorder = _Shop()
    shop = create_shop_app(jwks_url=f"http://127.0.0.1:{port}/_gateway/.well-known/jwks.json")
    shop.middlewares.append(shop_recorder.record)
    server = TestServer(shop, host="127.0.0.1")
    await server.start_server()
    shop_url = str(server.make_url("")).rstrip("/")
    text = config.read_text().replace("http://shop.invalid", shop_url)
    config.write_text(text)
    config.chmod(0o644)
    env = image.environment()
    cwd = image.path(image.final.workdir)
    seed = _seed(Path(image.root).parent)
    before = {p for p in image.root.rglob("*") if "csr-gateway/lib" not in str(p)}

    imported = subprocess.run(image.as_user([image.executable("csr-gateway", env), "directory",
                                             "import", "--config", str(config), str(seed)]),
                              env=env, cwd=cwd, capture_output=True, text=True, timeout=120)
    assert imported.returncode == 0, imported.stderr
    cmd = [image.executable(image.final.cmd[0], env),
           *[image.map(a) for a in image.final.cmd[1:]]]
    proc = subprocess.Popen(image.as_user(cmd), env=env, cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    try:
        health = image.as_user([image.executable(image.final.healthcheck[0], env)])
        deadline = time.monotonic() + 60
        while (checked := subprocess.run(health, env=env, capture_output=True,
                                         text=True)).returncode != 0:
            assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
            assert time.monotonic() < deadline, f"health check: {checked.stderr}"
            time.sleep(0.3)
        assert Path(f"/proc/{proc.pid}/status").read_text().count(f"\t{image.uid}\t") >= 1
        await _csr_flow(f"http://127.0.0.1:{port}", shop_recorder)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        await server.close()
    state = image.path("/var/lib/csr-gateway")
    assert (state / "audit.jsonl").stat().st_size > 0
    assert (state / "directory.sqlite3").exists() and any((state / "keys").iterdir())
    after = {p for p in image.root.rglob("*") if "csr-gateway/lib" not in str(p)}
    assert {p for p in after - before if state not in p.parents} == set()


async def _csr_flow(base: str, shop: _Shop) -> None:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:
        async with browser.post(f"{base}/_gateway/login", data={
                "username": "csr-carol", "password": "demo-pass-1"},
                allow_redirects=False) as resp:
            assert resp.status != 303, "a demo password opened the image's gateway"
        async with browser.post(f"{base}/_gateway/login", data={
                "username": "csr-carol", "password": PASSWORD}, allow_redirects=False) as resp:
            assert resp.status == 303
        async with browser.get(f"{base}/_gateway/whoami") as resp:
            token = (await resp.json())["csrf_token"]
        async with browser.post(f"{base}/_gateway/impersonate", data={
                "buyer": "buyer-alice", "reason": "TICKET-7", "csrf_token": token},
                allow_redirects=False) as resp:
            assert resp.status == 303, await resp.text()
        async with browser.get(f"{base}/cart") as resp:
            assert resp.status == 200
            assert "Alice" in await resp.text()
    last = {k.lower(): v for k, v in shop.seen[-1].items()}
    assert last["x-remote-user"] == "buyer-alice"
    assert last["x-impersonator"] == "csr-carol"
