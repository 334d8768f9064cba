"""CLI subcommands: each module defines `register(subparsers)`; cli.py discovers them."""
