"""The audit log: every model exchange, tool call, policy decision, approval and action of an
incident, appended to its own hash-chained JSON Lines file. See docs/audit.md."""

from aiops.audit.log import (
    MAX_RECORD_BYTES,
    TRUNCATED,
    AuditLog,
    bound,
    log_path,
)
from aiops.audit.record import AuditError, AuditRecord, AuditUnwritable
from aiops.audit.verify import VerifyResult, verify

__all__ = [
    "MAX_RECORD_BYTES",
    "TRUNCATED",
    "AuditError",
    "AuditLog",
    "AuditRecord",
    "AuditUnwritable",
    "VerifyResult",
    "bound",
    "log_path",
    "verify",
]
