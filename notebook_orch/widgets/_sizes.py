"""Graph sizes at which the widget changes how it draws (one place, so the README and the tests agree)."""

# Up to this many assets the graph is an ipycytoscape widget (one widget per node and edge, ~4 comms an asset:
# ~600 comms at 150 assets drew in about 2 s here); above, one anywidget holding the whole graph as one JSON trait.
IPYCYTOSCAPE_LIMIT = 150
# Notebook boxes (compound nodes that collapse) help read a few dozen assets; past this they cost draw time.
GROUPS_LIMIT = 200
