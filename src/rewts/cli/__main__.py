"""``python -m rewts.cli``: the same as the ``rewts`` script."""

from rewts.cli import main

main()
