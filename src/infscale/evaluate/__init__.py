"""The eval stage (rules/eval.smk): lm-eval task data prepared offline, and zero-shot scoring."""
