"""Agents that investigate an Incident: `anthropic` (Claude through the official SDK) and
`runbook` (the plugin's deterministic runbook). Both return a plan; neither runs an action —
the incident loop does, through the policy gate."""
