"""The select stage (rules/select.smk): candidate shapes chosen under budgets, and the winner."""
