"""csr-gateway: an authorization gateway for customer-service impersonation."""

__version__ = "0.1.0"
