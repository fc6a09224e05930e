"""``python -m wiseft`` runs the CLI."""

from .cli import main

raise SystemExit(main())
