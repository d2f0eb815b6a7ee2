"""The train stage (rules/train.smk): the model, the training loop, checkpoints, DDP/FSDP."""
