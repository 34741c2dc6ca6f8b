"""`python -m gateway.demo`: the demo shop alone, for a gateway running elsewhere (compose)."""

from __future__ import annotations

import argparse

from gateway.demo.shop import run_shop


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m gateway.demo",
                                     description="the demo shop, trusting a gateway's headers")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--jwks-url", help="believe only headers the gateway's assertion "
                        "confirms (its /_gateway/.well-known/jwks.json)")
    parser.add_argument("--audience", default="csr-demo-shop")
    args = parser.parse_args()
    run_shop(args.host, args.port, jwks_url=args.jwks_url, audience=args.audience)


if __name__ == "__main__":
    main()
