"""``python -m genemill`` runs the CLI."""

from genemill.cli import main

main()
