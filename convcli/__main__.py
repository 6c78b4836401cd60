"""``python -m convcli`` runs the command line."""

from convcli.cli import main

if __name__ == "__main__":  # pragma: no cover
    main()
