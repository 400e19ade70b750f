"""Debian packages a benchmark's anchor needs (Postfix, postfwd), installed with apt-get when missing (root)."""

from __future__ import annotations

import os
import shutil
import subprocess


def ensure_debian_package(package: str, binary: str, preseed: str = "") -> str:
    """The path of `binary` on the PATH, installing `package` (with its debconf `preseed`) first when it is missing."""
    found = shutil.which(binary)
    if found is not None:
        return found
    print(f"installing Debian's {package} (for {binary})...", flush=True)
    if preseed:
        subprocess.run(["debconf-set-selections"], input=preseed.encode(), check=False)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "install", "-y", "-q", "--no-install-recommends", package], env=env, check=True)
    found = shutil.which(binary)
    if found is None:
        raise SystemExit(f"{binary} is still missing after installing {package}")
    return found
