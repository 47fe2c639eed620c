"""The real node's own credentials, not the cluster admin's: a client certificate signed by the
local cluster's CA for each of the node's components, and a kubeconfig that uses it.

- kubelet (and the node's DNS, which reads Services and pods as a kubelet does):
  `system:node:<node>` in `system:nodes`. The API server's Node authorizer
  (`--authorization-mode=Node,RBAC`) then lets it do what a kubelet does for its own node and
  its own pods, and no more: what a real cluster's kubelet gets by TLS bootstrap.
- kube-proxy: `system:kube-proxy`, which Kubernetes' default ClusterRoleBinding
  `system:node-proxier` lets read Services, EndpointSlices and nodes.

The certificates are made with `openssl` (one RSA key each, client authentication only, valid a
year) and live under the node's directory, which `down` removes.
"""

from __future__ import annotations

import secrets
import subprocess
from dataclasses import dataclass
from pathlib import Path

import yaml

from aiops.cluster.errors import ClusterError


@dataclass(frozen=True)
class Identity:
    user: str
    groups: tuple[str, ...] = ()

    @property
    def subject(self) -> str:
        """The certificate's subject: O= per group (what the API server reads as groups)."""
        return "".join(f"/O={g}" for g in self.groups) + f"/CN={self.user}"


def kubelet_identity(node: str) -> Identity:
    return Identity(f"system:node:{node}", ("system:nodes",))


KUBE_PROXY = Identity("system:kube-proxy")
EXTENSIONS = "keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n"


def _openssl(*args: str) -> None:
    proc = subprocess.run(
        ["openssl", *args], capture_output=True, text=True, timeout=60, check=False
    )
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise ClusterError(f"openssl {args[0]} failed for the real node's credentials: {last}")


def kubeconfig_for(
    identity: Identity, name: str, admin_kubeconfig: Path, pki_dir: Path, out_dir: Path
) -> Path:
    """A kubeconfig in `out_dir` (`<name>.kubeconfig`) for `identity`, with the admin
    kubeconfig's server and CA; made once, kept while the node's directory lives."""
    path = out_dir / f"{name}.kubeconfig"
    if path.exists():
        return path
    out_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    key, csr, crt, ext = (out_dir / f"{name}.{s}" for s in ("key", "csr", "crt", "ext"))
    ext.write_text(EXTENSIONS)
    _openssl("genrsa", "-out", str(key), "2048")
    key.chmod(0o600)
    _openssl("req", "-new", "-key", str(key), "-subj", identity.subject, "-out", str(csr))
    _openssl(
        "x509", "-req", "-in", str(csr), "-CA", str(pki_dir / "ca.crt"),
        "-CAkey", str(pki_dir / "ca.key"), "-set_serial", f"0x{secrets.token_hex(16)}",
        "-days", "365", "-sha256", "-extfile", str(ext), "-out", str(crt),
    )  # fmt: skip
    csr.unlink()
    ext.unlink()
    try:
        admin = yaml.safe_load(admin_kubeconfig.read_text())
        cluster = admin["clusters"][0]["cluster"]
    except (OSError, yaml.YAMLError, KeyError, IndexError, TypeError) as exc:
        raise ClusterError(
            f"cannot read the cluster's kubeconfig {admin_kubeconfig}: {exc}"
        ) from exc
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "local", "cluster": cluster}],
        "users": [
            {
                "name": identity.user,
                "user": {"client-certificate": str(crt), "client-key": str(key)},
            }
        ],
        "contexts": [{"name": "node", "context": {"cluster": "local", "user": identity.user}}],
        "current-context": "node",
    }
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path
