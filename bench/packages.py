"""Debian packages a benchmark's anchor needs (Postfix, postfwd), installed with apt-get when missing (root)."""

from __future__ import annotations

import os
import shutil
import subprocess


def ensure_debian_package(package: str, binaries: tuple[str, ...], preseed: str = "") -> str:
    """The path of the first of `binaries` on the PATH, installing `package` first when none is there."""
    found = next((path for path in map(shutil.which, binaries) if path), None)
    if found is not None:
        return found
    print(f"installing Debian's {package} (for {binaries[0]})...", flush=True)
    if preseed:
        subprocess.run(["debconf-set-selections"], input=preseed.encode(), check=False)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "install", "-y", "-q", "--no-install-recommends", package], env=env, check=True)
    found = next((path for path in map(shutil.which, binaries) if path), None)
    if found is None:
        raise SystemExit(f"{binaries[0]} is still missing after installing {package}")
    return found
