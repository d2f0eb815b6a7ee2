"""Choosing the runs that most settle the top-k selection per FLOP (``infscale design``)."""
