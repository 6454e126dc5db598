"""Throwaway certificates for the local control plane, made with the openssl CLI.

The aggregation layer needs two trust paths: kube-apiserver proves itself to an
extension API server with a front-proxy client cert (CN=front-proxy-client), and
checks the extension's serving cert against the APIService's caBundle. EC keys keep
generation fast (milliseconds, not seconds as RSA).
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

FRONT_PROXY_CLIENT = "front-proxy-client"


@dataclass(frozen=True, slots=True)
class Pair:
    cert: Path
    key: Path


def front_proxy(pki: Path) -> tuple[Pair, Pair]:
    """(CA, client) for kube-apiserver's --requestheader-* / --proxy-client-* flags."""
    ca = _ca(pki, "front-proxy-ca")
    return ca, _signed(pki, "front-proxy-client", ca, cn=FRONT_PROXY_CLIENT, san="")


def serving(pki: Path, name: str, san: str) -> tuple[Pair, Pair]:
    """(CA, server cert) for an extension API server; `san` as openssl writes it."""
    ca = _ca(pki, f"{name}-ca")
    return ca, _signed(pki, name, ca, cn=name, san=san)


def _ca(pki: Path, name: str) -> Pair:
    pair = Pair(pki / f"{name}.crt", pki / f"{name}.key")
    if pair.cert.exists():
        return pair
    pki.mkdir(parents=True, exist_ok=True)
    _key(pair.key)
    _openssl("req", "-x509", "-new", "-key", pair.key, "-out", pair.cert, "-days", "3650",
             "-subj", f"/CN={name}")  # fmt: skip
    return pair


def _signed(pki: Path, name: str, ca: Pair, *, cn: str, san: str) -> Pair:
    pair = Pair(pki / f"{name}.crt", pki / f"{name}.key")
    if pair.cert.exists():
        return pair
    _key(pair.key)
    csr = pki / f"{name}.csr"
    _openssl("req", "-new", "-key", pair.key, "-out", csr, "-subj", f"/CN={cn}")
    ext = pki / f"{name}.ext"
    usage = "serverAuth" if san else "clientAuth"
    ext.write_text(f"extendedKeyUsage={usage}\n" + (f"subjectAltName={san}\n" if san else ""))
    _openssl("x509", "-req", "-in", csr, "-CA", ca.cert, "-CAkey", ca.key, "-CAcreateserial",
             "-out", pair.cert, "-days", "3650", "-extfile", ext)  # fmt: skip
    return pair


def _key(path: Path) -> None:
    _openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", path)
    path.chmod(0o600)


def _openssl(*args: str | Path) -> None:
    subprocess.run(["openssl", *map(str, args)], capture_output=True, check=True)
