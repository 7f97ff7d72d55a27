"""Local batch transform: a detached runner splits, batches and sends each input file to
serving containers and writes ``<file>.out`` in input order."""
