"""Operator-wide settings and shared clients, set once at startup."""

from __future__ import annotations

import asyncio
import importlib
from typing import Any

import kopf

from aiops import logs
from aiops.kube import CustomResources, load_api_client
from aiops.loops.runtime import build_runtime
from aiops.settings import OperatorSettings, SettingsError


@kopf.on.login()
def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    """In a pod: the ServiceAccount; elsewhere: KUBECONFIG as it is now (the kubernetes
    client's own default is fixed when it is imported, which embedders and tests trip on)."""
    return kopf.login_with_service_account(**kwargs) or kopf.login_with_kubeconfig(**kwargs)


def operator_settings(memo: kopf.Memo) -> OperatorSettings:
    """`aiops operator run` puts its checked settings in the memo; run any other way (`kopf
    run -m aiops.handlers`, kopf's test runner), they are read from the environment here.
    A bad one stops the operator at start, the variable named: kopf does not retry a
    PermanentError of a startup handler, it exits."""
    given = getattr(memo, "settings", None)
    if isinstance(given, OperatorSettings):
        return given
    try:
        return OperatorSettings.from_env()
    except SettingsError as err:
        raise kopf.PermanentError(f"bad settings: {err}") from err


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    # `settings` is kopf's own; ours are `memo.settings`.
    # Our CRD schemas prune unknown status fields, so kopf keeps its bookkeeping in
    # annotations under our own prefix rather than in status.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="aiops.dev")
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix="aiops.dev")
    settings.posting.level = 20  # INFO and above become Events
    # Watch timeouts, set so that a watch can never silently stop. The API server ends each
    # watch after `server_timeout` and kopf starts the next one from the last resourceVersion.
    # A restarted or unreachable API server that leaves the connection open but silent (a
    # half-open TCP stream: no FIN reaches us) would hang a watch forever without
    # `client_timeout`: a bit longer than the server's, so the server normally ends the watch
    # first and the client's limit only cuts a dead one. `connect_timeout` bounds each attempt
    # to reach a server that is down, so kopf's retries (with `reconnect_backoff`) go on.
    settings.watching.server_timeout = 60
    settings.watching.client_timeout = 75
    settings.watching.connect_timeout = 10
    try:
        memo.settings = operator_settings(memo)
    except kopf.PermanentError as err:
        memo.settings_refused = str(err)  # the other startup handlers stop too (runtime_of)
        raise
    memo.api = CustomResources(load_api_client(memo.settings.kubeconfig))
    memo.runtime = build_runtime(memo.api, memo.settings)
    if memo.settings.api_key or getattr(memo, "peering", None) is not None:
        # The model's agent (the anthropic SDK takes seconds to import on a busy machine) is
        # imported now, in a thread: imported by the first investigation, on the loop, it
        # stalled every daemon of the operator meanwhile (40 s once on a loaded CI machine),
        # and a standby taking over would pay for it in its takeover.
        await asyncio.to_thread(importlib.import_module, "aiops.agent.factory")
    # Every line is redacted with the runtime's redactor (the keys it loads), names added.
    logs.install()
    logs.redact_with(memo.runtime.redactor)
