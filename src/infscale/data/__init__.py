"""The data stage (rules/data.smk): read a corpus, train or load a tokenizer, pack token windows."""
