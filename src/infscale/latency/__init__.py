"""The latency stage (rules/latency.smk): generation timing, the paper's
sweeps, the latency model."""
