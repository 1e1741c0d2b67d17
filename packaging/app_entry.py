"""Entry point of the windowed executable (Windows `medtl-app.exe`, macOS `medtl.app`): `medtl app [PATH]`, no console."""

import multiprocessing
import os
import sys

if __name__ == "__main__":
    multiprocessing.freeze_support()  # the scanner's process pool re-enters here in a frozen build
    for name in ("stdout", "stderr"):
        if getattr(sys, name) is None:  # a windowed Windows program has no console streams
            setattr(sys, name, open(os.devnull, "w", encoding="utf-8"))
    from medtl.cli import main

    raise SystemExit(main(["app", *(arg for arg in sys.argv[1:] if not arg.startswith("-psn_"))]))  # -psn_: macOS Finder's process serial number
