"""Pure file-format readers: an open handle or bytes in, dataclasses or arrays out.

Rule of this room: no network, no database, no settings; may import ``genemill.errors`` only.
Each module's docstring states the format it reads.
"""
