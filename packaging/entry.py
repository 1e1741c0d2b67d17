"""Entry point of the packaged application: the `medtl` CLI (and `medtl app`) in a frozen build."""

import multiprocessing

if __name__ == "__main__":
    multiprocessing.freeze_support()  # the scanner's process pool re-enters here in a frozen build
    from medtl.cli import program

    raise SystemExit(program())
