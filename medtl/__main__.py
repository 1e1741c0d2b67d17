from medtl.cli import program

raise SystemExit(program())
