"""`python -m funcforge` runs the command line."""

from funcforge.cli import main

raise SystemExit(main())
