"""The audit trail: one hash-chained JSON line per request and per event."""

from gateway.audit.log import AuditConfig, AuditLog, redact_path
from gateway.audit.records import AUDIT_KEYS, EVENTS, RECORDS

__all__ = ["AUDIT_KEYS", "EVENTS", "RECORDS", "AuditConfig", "AuditLog", "redact_path"]
