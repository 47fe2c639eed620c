"""Notifications: a webhook told of the transitions a person acts on (an Incident opened, an
approval needed, resolved, escalated; a Chaos injected, recovered), once each.

`messages` turns a transition into a `Notice` and a payload (Slack-compatible or generic
JSON); `sink` delivers them from a bounded queue in a background task, with retries and
backoff, and records each delivered notice on its object (an annotation), so that a restart
neither repeats nor loses one; `handlers` wires it into the operator (the webhook URL from a
Secret, the transitions hub, a catch-up at start).
"""
