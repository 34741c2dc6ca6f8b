"""`python -m gateway` runs the csr-gateway command."""

from gateway.cli import main

raise SystemExit(main())
