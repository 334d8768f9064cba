"""`python -m funcforge` runs the command line.

`python -m` puts the current folder first on `sys.path`, and editors start
`python -m funcforge serve` in the workspace: a workspace's `libcst.py` or
`mcp.py` would then be imported into funcforge itself (an untrusted workspace
running code on open). The folder comes off the path before anything else is
imported; funcforge and its dependencies load from the installation only.
"""

import os
import sys

_here = os.path.abspath(os.curdir)
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _here]

from funcforge.cli import main  # noqa: E402 - after the path is cleaned

raise SystemExit(main())
