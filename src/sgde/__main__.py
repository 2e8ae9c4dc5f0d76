"""``python -m sgde``: the same command line as the ``sgde`` script."""

from sgde.cli.app import main

main()
