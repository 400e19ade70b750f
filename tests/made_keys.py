"""Keys and certificates made for the tests with the openssl command (no network, nothing shipped)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests import dkimkey


def _openssl(*args: str) -> bytes:
    if shutil.which("openssl") is None:
        pytest.fail("the openssl command is needed to make test keys (apt-get install openssl)", pytrace=False)
    return subprocess.run(["openssl", *args], check=True, capture_output=True).stdout


def dkim_key(folder: Path) -> tuple[Path, str]:
    """The tests' DKIM key (PEM file) and the TXT record publishing its public half (one key for every test)."""
    return dkimkey.KEYS / "test-dkim.key", dkimkey.txt_record()


def tls_certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key (cert, key)."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    _openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1",
        "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
    )  # fmt: skip
    return cert, key
