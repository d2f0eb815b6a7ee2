"""The fit stage (rules/fit.smk): the scaling laws, their fitting methods and comparison."""
