"""``python -m rewts``: the same command line as the ``rewts`` script."""

from rewts.cli import main

if __name__ == "__main__":
    main()
