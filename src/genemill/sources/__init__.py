"""genemill.sources."""
