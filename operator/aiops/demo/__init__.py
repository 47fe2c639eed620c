"""`aiops demo`: a live terminal UI that walks a person from a healthy system through a fault
(a Chaos) to a verified fix, fed only by the API server, the audit log and Prometheus."""
