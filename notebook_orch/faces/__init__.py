"""The faces over ``Project``: the command line, the IPython magics, lineage renderings."""
