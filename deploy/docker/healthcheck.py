#!/usr/bin/env python3
"""Container health check: GET /_gateway/healthz on the port the configuration says."""

import os
import sys
import urllib.request

from gateway.config.load import ConfigError, load_settings


def main() -> int:
    try:
        port = load_settings(os.environ.get("CSRGW_CONFIG", "/etc/csr-gateway/gateway.yaml")).port
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 1
    url = f"http://127.0.0.1:{port}/_gateway/healthz"
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return 0 if resp.status == 200 else 1
    except OSError as exc:
        print(f"{url}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
