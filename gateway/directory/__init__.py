"""The directory: users, groups, companies, CSR assignments and IP fences."""

from gateway.directory.store import Directory

__all__ = ["Directory"]
