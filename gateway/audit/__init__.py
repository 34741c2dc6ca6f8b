"""The audit trail: one hash-chained JSON line per request and per event."""

from gateway.audit.log import AUDIT_KEYS, EVENTS, AuditConfig, AuditLog, redact_path

__all__ = ["AUDIT_KEYS", "EVENTS", "AuditConfig", "AuditLog", "redact_path"]
