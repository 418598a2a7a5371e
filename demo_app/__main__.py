"""``python -m demo_app``: serve development.ini, as ``pserve`` would."""

import sys
from pathlib import Path

from pyramid.scripts.pserve import main

if __name__ == "__main__":
    ini = Path(__file__).resolve().parent / "development.ini"
    sys.exit(main(["pserve", str(ini), *sys.argv[1:]]))
