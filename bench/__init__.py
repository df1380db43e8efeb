"""synapse_nb benchmarks: each target is measured as a ratio against a baseline measured in the same run."""
