"""`python -m gateway` runs the csr-gateway command."""

from gateway.cli.main import main

raise SystemExit(main())
