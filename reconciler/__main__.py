"""`python -m reconciler` is the `policy-reconciler` command."""

from reconciler.cli import main

main()
