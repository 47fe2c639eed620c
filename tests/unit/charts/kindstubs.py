"""Stand-ins for docker, kind, helm and kubectl, to run hack/kind-up.sh and kind-down.sh where
there is no Docker engine: each records its argument vector (and its stdin, when the command
reads one) as a JSON line, and answers the few queries the scripts make. kind remembers which
clusters exist in a state file, so a second run sees the first one's cluster.

Knobs (environment): STUB_DOCKER_DOWN=1 (`docker info` fails as with no daemon),
STUB_KIND_LOAD_FAILS=1 (`kind load docker-image` fails as with Docker's containerd store),
STUB_IMAGE_SALT (changes the image ids `docker image inspect` reports: a rebuilt image).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TOOLS = ("docker", "kind", "helm", "kubectl")
BASH = shutil.which("bash") or "/bin/bash"

STUB = r"""
import base64, hashlib, json, os, sys
from pathlib import Path

tool = Path(sys.argv[0]).name
args = sys.argv[1:]
state = Path(os.environ["STUB_STATE"])
stdin = None
if "-" in args or any("/dev/stdin" in a for a in args):
    stdin = sys.stdin.read()
with open(state / "calls.jsonl", "a") as log:
    log.write(json.dumps({"tool": tool, "argv": args, "stdin": stdin}) + "\n")

def arg(flag):
    return args[args.index(flag) + 1] if flag in args else None

clusters = state / "clusters"
known = clusters.read_text().split() if clusters.exists() else []
if tool == "docker":
    if args[:1] == ["info"]:
        if os.environ.get("STUB_DOCKER_DOWN"):
            print("Client:\n Version: 28.2.2\n")
            print("Cannot connect to the Docker daemon at unix:///var/run/docker.sock. "
                  "Is the docker daemon running?", file=sys.stderr)
            sys.exit(1)
        print("Server Version: 28.2.2")
    elif args[:2] == ["image", "inspect"]:
        digest = hashlib.sha256((args[-1].split(":")[0] + os.environ.get("STUB_IMAGE_SALT", ""))
                                .encode()).hexdigest()
        print("sha256:" + digest)
    elif args[:1] == ["version"]:
        print("arm64")
elif tool == "kind":
    if args[:2] == ["get", "clusters"]:
        if not known:
            print("No kind clusters found.", file=sys.stderr)
        print("\n".join(known))
    elif args[:2] == ["create", "cluster"]:
        clusters.write_text("\n".join([*known, arg("--name")]))
    elif args[:2] == ["delete", "cluster"]:
        clusters.write_text("\n".join(c for c in known if c != arg("--name")))
    elif args[:2] == ["get", "kubeconfig"]:
        print("apiVersion: v1\nkind: Config\nclusters: []")
    elif args[:2] == ["load", "docker-image"] and os.environ.get("STUB_KIND_LOAD_FAILS"):
        print("ERROR: failed to load image: ctr: content digest sha256:0: not found",
              file=sys.stderr)
        sys.exit(1)
elif tool == "kubectl":
    if "create" in args and "namespace" in args:
        name = args[args.index("namespace") + 1]
        print(f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {name}")
    elif "create" in args and "secret" in args:
        data = base64.b64encode((stdin or "").encode()).decode()
        print(f"apiVersion: v1\nkind: Secret\nmetadata:\n  name: x\ndata:\n  api-key: {data}")
"""


@dataclass
class Call:
    tool: str
    argv: list[str]
    stdin: str | None

    def has(self, *words: str) -> bool:
        return all(w in self.argv for w in words)


@dataclass
class Stubs:
    bin: Path
    state: Path
    env: dict[str, str] = field(default_factory=dict)

    def calls(self) -> list[Call]:
        log = self.state / "calls.jsonl"
        if not log.exists():
            return []
        return [Call(**json.loads(line)) for line in log.read_text().splitlines()]

    def clear(self) -> None:
        (self.state / "calls.jsonl").unlink(missing_ok=True)

    def run(
        self, script: Path, extra_env: dict[str, str] | None = None, path: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        env = {
            "PATH": path if path is not None else f"{self.bin}{os.pathsep}/usr/bin{os.pathsep}/bin",
            "HOME": str(self.state / "home"),
            "AIOPS_TOOLS_BIN": str(self.bin),
            "STUB_STATE": str(self.state),
            "TMPDIR": str(self.state),
            **self.env,
            **(extra_env or {}),
        }
        return subprocess.run(
            [BASH, str(script)],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
            check=False,
        )


def make_stubs(root: Path, **env: Any) -> Stubs:
    bin_dir, state = root / "bin", root / "state"
    bin_dir.mkdir(parents=True)
    (state / "home").mkdir(parents=True)
    for tool in TOOLS:
        path = bin_dir / tool
        path.write_text(f"#!{sys.executable} -S\n{STUB}")
        path.chmod(0o755)
    return Stubs(bin_dir, state, {k: str(v) for k, v in env.items()})
