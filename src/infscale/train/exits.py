"""A training process's exit codes, in a module of their own: the launchers that pass them on
(the job's script, the per-node launcher, torchrun's parent) import no torch, so that a job's
processes that only wait start in a fraction of a second."""

REQUEUE_EXIT = 75  # EX_TEMPFAIL: stopped on a signal after writing a checkpoint; rerun to resume
FAILED_EXIT = 1
