"""The deployment files: Kubernetes manifests, compose, nginx site, systemd unit, checked
with the real tools where they exist here (kubernetes-validate, nginx -t, systemd-analyze)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.gateway import IN_CI, ROOT
from tests.support.nginx import nginx_main_config, render_nginx_site, require_nginx

DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "kubernetes"


def _manifests() -> list[Path]:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    return [K8S / name for name in kustomization["resources"]]


def _documents() -> dict[str, dict[str, Any]]:
    docs = [d for path in _manifests() for d in yaml.safe_load_all(path.read_text()) if d]
    return {f"{d['kind']}/{d['metadata']['name']}": d for d in docs}


def _schema_versions() -> list[str]:
    import kubernetes_validate

    base = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema"
    found = sorted((tuple(int(x) for x in m.group(1).split(".")), m.group(1))
                   for p in base.iterdir() if (m := re.fullmatch(r"v([\d.]+)-local-strict",
                                                                   p.name)))
    return [found[0][1], found[-1][1]]  # the oldest and the newest it ships (offline)


def _validate(version: str, *paths: Path) -> subprocess.CompletedProcess[str]:
    tool = Path(sys.executable).parent / "kubernetes-validate"
    return subprocess.run([str(tool), "--strict", "-k", version, *map(str, paths)],
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("version", _schema_versions())
def test_manifests_validate_strictly(version: str) -> None:
    """Every manifest the kustomization lists passes kubernetes-validate --strict."""
    result = _validate(version, *_manifests())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "passed" in result.stdout + result.stderr


def test_validation_rejects_an_unknown_field(tmp_path: Path) -> None:
    """The strict check is real: a misspelt field in the Deployment fails it."""
    broken = (K8S / "deployment.yaml").read_text().replace("readinessProbe:", "readynessProbe:")
    (tmp_path / "deployment.yaml").write_text(broken)
    assert _validate(_schema_versions()[-1], tmp_path / "deployment.yaml").returncode != 0


def test_deployment_probes_resources_and_security() -> None:
    """Readiness on readyz, liveness on healthz, sized requests, non-root read-only pods,
    and the Service and PodDisruptionBudget select the Deployment's pods."""
    docs = _documents()
    deployment = docs["Deployment/csr-gateway"]
    pod = deployment["spec"]["template"]
    (container,) = pod["spec"]["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/_gateway/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/_gateway/healthz"
    assert container["resources"]["requests"] == {"cpu": "500m", "memory": "128Mi"}
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["spec"]["securityContext"]["runAsUser"] == 10001
    labels = pod["metadata"]["labels"]
    for selector in (docs["Service/csr-gateway"]["spec"]["selector"],
                     docs["PodDisruptionBudget/csr-gateway"]["spec"]["selector"]["matchLabels"]):
        assert selector.items() <= labels.items()
    assert deployment["spec"]["replicas"] > docs["PodDisruptionBudget/csr-gateway"]["spec"][
        "minAvailable"]
    mounted = {v["name"] for v in container["volumeMounts"]}
    assert mounted == {v["name"] for v in pod["spec"]["volumes"]}
    env = {e["name"] for e in container["env"]}
    secret = docs["Secret/csr-gateway-env"]["stringData"]
    assert {"CSRGW_UPSTREAM_URL", "CSRGW_SESSION_STORE"} <= env
    assert {"CSRGW_DIRECTORY_URL", "CSRGW_REDIS_URL"} <= secret.keys()


def test_configmap_is_generated_from_the_files() -> None:
    """configmap.yaml carries the image's configuration and the policies as they are."""
    sys.path.insert(0, str(K8S))
    try:
        import make_configmap
    finally:
        sys.path.remove(str(K8S))
    assert (K8S / "configmap.yaml").read_text() == make_configmap.render(), (
        "stale: run python deploy/kubernetes/make_configmap.py")


def _compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return data


def _config_variables() -> set[str]:
    text = "\n".join(line.split("#", 1)[0]
                     for line in (DEPLOY / "docker" / "gateway.yaml").read_text().splitlines())
    return set(re.findall(r"\$\{(\w+)\}", text))


def test_compose_services() -> None:
    """Two gateway replicas on Redis and PostgreSQL, nginx in front, the demo shop; every
    service has a health check; the replicas start after what they need."""
    services = _compose()["services"]
    assert set(services) == {"gateway-1", "gateway-2", "nginx", "shop", "redis", "postgres"}
    for name, service in services.items():
        assert service["image"], name
        assert service["healthcheck"]["test"][0] == "CMD", name
    for name in ("gateway-1", "gateway-2"):
        gateway = services[name]
        assert gateway["image"] == "csr-gateway:latest" and gateway["read_only"] is True
        assert gateway["healthcheck"]["test"] == ["CMD", "csr-gateway-healthcheck"]
        env = gateway["environment"]
        assert env["CSRGW_SESSION_STORE"] == "redis"
        assert env["CSRGW_DIRECTORY_URL"].startswith("postgresql+asyncpg://")
        assert "@postgres:5432/" in env["CSRGW_DIRECTORY_URL"]
        assert env["CSRGW_REDIS_URL"].startswith("redis://redis:6379/")
        assert _config_variables() <= env.keys()
        assert {"redis", "postgres"} <= gateway["depends_on"].keys()
        assert any(v.endswith(":/var/lib/csr-gateway") for v in gateway["volumes"])
    assert services["gateway-2"]["depends_on"]["gateway-1"] == {"condition": "service_healthy"}
    assert services["nginx"]["depends_on"].keys() == {"gateway-1", "gateway-2"}
    site = next(v for v in services["nginx"]["volumes"] if "csr-gateway.conf" in v)
    assert (DEPLOY / site.split(":")[0]).resolve() == DEPLOY / "nginx" / "csr-gateway.conf"
    assert "csr-gateway-healthcheck" in (ROOT / "Dockerfile").read_text()


def test_compose_nginx_upstream_lists_the_replicas() -> None:
    """The nginx site balances across exactly the compose file's gateway services."""
    servers = re.findall(r"^\s*server\s+([\w.-]+):8080", (DEPLOY / "nginx" /
                                                          "csr-gateway.conf").read_text(), re.M)
    assert sorted(servers) == sorted(n for n in _compose()["services"] if
                                     n.startswith("gateway-"))


@pytest.mark.nginx
def test_nginx_site_passes_nginx_t(tmp_path: Path) -> None:
    """The nginx site file, included in a main configuration, passes `nginx -t`."""
    nginx = require_nginx()
    site = tmp_path / "csr-gateway.conf"
    site.write_text(render_nginx_site([18080, 18081], 18082))
    conf = tmp_path / "nginx.conf"
    conf.write_text(nginx_main_config(tmp_path, site))
    result = subprocess.run([nginx, "-t", "-p", str(tmp_path), "-c", str(conf)],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr


def test_systemd_unit_verifies(tmp_path: Path) -> None:
    """systemd-analyze verify accepts the unit (its binary pointed at this install)."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        if IN_CI:
            pytest.fail("systemd-analyze is missing")
        pytest.skip("systemd-analyze is missing")
    text = (DEPLOY / "systemd" / "csr-gateway.service").read_text()
    assert "ProtectSystem=strict" in text and "StateDirectory=csr-gateway" in text
    assert "DynamicUser=yes" in text and "NoNewPrivileges=yes" in text
    unit = tmp_path / "csr-gateway.service"
    unit.write_text(text.replace("/opt/csr-gateway/bin/csr-gateway",
                                 str(Path(sys.executable).parent / "csr-gateway")))
    result = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0 and "Unknown" not in result.stderr, result.stderr
