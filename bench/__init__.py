"""Benchmarks that print ratios against budgets or plain tools measured in the same run."""
