"""One module per schema version; the file name starts with its revision id."""
