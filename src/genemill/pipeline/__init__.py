"""genemill.pipeline."""
