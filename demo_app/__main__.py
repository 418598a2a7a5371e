"""``python -m demo_app [http_port=8080]``: serve development.ini, as ``pserve`` would.

The port is 6543 unless ``http_port=...`` is given; other arguments are
pserve's.
"""

import sys
from pathlib import Path

from pyramid.scripts.pserve import main

#: The port the demo serves on when none is given.
DEFAULT_PORT = 6543

if __name__ == "__main__":
    ini = Path(__file__).resolve().parent / "development.ini"
    arguments = sys.argv[1:]
    if not any(argument.startswith("http_port=") for argument in arguments):
        arguments.append(f"http_port={DEFAULT_PORT}")
    sys.exit(main(["pserve", str(ini), *arguments]))
