"""``python -m exposure_ctrl`` runs the command line."""

from exposure_ctrl.cli import main

if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
