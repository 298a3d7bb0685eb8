"""The run engine: planning glue, run handles, the run lifecycle and executors."""
