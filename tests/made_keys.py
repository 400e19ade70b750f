"""Keys and certificates made for the tests with the openssl command (no network, nothing shipped)."""

from __future__ import annotations

import base64
import shutil
import subprocess
from pathlib import Path

import pytest


def _openssl(*args: str) -> bytes:
    if shutil.which("openssl") is None:
        pytest.fail("the openssl command is needed to make test keys (apt-get install openssl)", pytrace=False)
    return subprocess.run(["openssl", *args], check=True, capture_output=True).stdout


def dkim_key(folder: Path) -> tuple[Path, str]:
    """A 2048-bit RSA key (PEM file) and the DKIM TXT record publishing its public half."""
    key = folder / "dkim.pem"
    _openssl("genrsa", "-out", str(key), "2048")
    public = _openssl("rsa", "-in", str(key), "-pubout", "-outform", "DER")
    return key, "v=DKIM1; k=rsa; p=" + base64.b64encode(public).decode()


def tls_certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key (cert, key)."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    _openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1",
        "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
    )  # fmt: skip
    return cert, key
