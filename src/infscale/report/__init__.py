"""The report stage (rules/report.smk): tables, figures and the summary a researcher reads."""
