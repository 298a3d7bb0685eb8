"""What runs inside a kernel: executing %%asset cells, loading inputs, the session cache."""
