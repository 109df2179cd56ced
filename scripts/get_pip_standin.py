"""Offline stand-in for the pip bootstrap script that ansible-test downloads.

ansible-test runs its cached ``get_pip_<version>.py`` with pip's command-line options and the pip version it
wants (``pip==24.2`` and friends). This stand-in installs the interpreter's bundled pip with ``ensurepip``,
then installs the requested packages from the package index with that pip. ``scripts/bootstrap.sh`` copies
it into ``~/.ansible/test/cache/`` when the real script is absent.
"""

import subprocess
import sys

SKIPPED = {"--no-setuptools", "--no-wheel"}


def main():
    args = [arg for arg in sys.argv[1:] if arg not in SKIPPED]
    subprocess.check_call([sys.executable, "-m", "ensurepip", "--upgrade", "--default-pip"])
    subprocess.check_call([sys.executable, "-m", "pip", "install", "--disable-pip-version-check"] + args)


if __name__ == "__main__":
    main()
