"""`aiops up` shows the cold Go build's progress: each package `go build -v` reports (GOFLAGS)
becomes the step's detail, counted; a failed build says its last lines."""

from __future__ import annotations

from pathlib import Path

import pytest

from aiops.localsystem import LocalSystemError
from aiops.localsystem.system import stream_build


def _script(tmp_path: Path, body: str) -> Path:
    script = tmp_path / "build.sh"
    script.write_text("#!/bin/sh\n" + body)
    script.chmod(0o755)
    return script


def test_each_compiled_package_is_a_detail_with_a_count(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("GOFLAGS", raising=False)
    # What build.sh and `go build -v` write on stderr; -v must reach go through GOFLAGS.
    script = _script(
        tmp_path,
        'echo "aiops: building the Go tools" >&2\n'
        'echo "go: downloading k8s.io/api v0.37.2" >&2\n'
        'echo "GOFLAGS=$GOFLAGS" >&2\n'
        'echo "k8s.io/apimachinery/pkg/util/sets" >&2\n'
        'echo "k8s.io/kubernetes/cmd/kube-apiserver" >&2\n'
        "echo /bin/ignored\n",
    )
    seen: list[str] = []
    stream_build(script, seen.append)
    assert seen == [
        "0 packages compiled; aiops: building the Go tools",
        "0 packages compiled; go: downloading k8s.io/api v0.37.2",
        "1 packages compiled; GOFLAGS=-v",
        "2 packages compiled; k8s.io/apimachinery/pkg/util/sets",
        "3 packages compiled; k8s.io/kubernetes/cmd/kube-apiserver",
    ]


def test_a_failed_build_says_its_last_lines(tmp_path: Path) -> None:
    script = _script(
        tmp_path, 'echo "k8s.io/foo" >&2\necho "go: no space left on device" >&2\nexit 2\n'
    )
    with pytest.raises(LocalSystemError, match=r"failed \(exit 2\): k8s.io/foo \| go: no space"):
        stream_build(script, lambda _: None)
