"""`python -m tinygrad_cnn ...` runs the `tinygrad-cnn` command (see cli.py)."""
from .cli import main

raise SystemExit(main())
