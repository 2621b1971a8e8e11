"""genemill.datasets."""
