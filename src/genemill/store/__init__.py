"""genemill.store."""
