"""Pure numerical kernels: NumPy arrays in, arrays out; shapes and units in every docstring.

Rule of this room: no I/O, no network, no database, no settings; may import ``genemill.errors`` only.
"""
