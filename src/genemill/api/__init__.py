"""genemill.api."""
