"""genemill.web."""
