"""Pairwise ranking for HumanRank, free of Dagster, Gradio and the store.

| module        | what it does                                                                     |
|---------------|----------------------------------------------------------------------------------|
| `bt`          | the Bradley–Terry fit over every comparison (order-independent), on the Elo scale |
| `pairs`       | which pairs to show next: few comparisons, close scores, no immediate repeats     |
| `comparisons` | journal entries → the comparisons in force (undo applied)                        |
"""

from beprepared_dagster.ranking.bt import BASE, Fit, fit, kendall_tau
from beprepared_dagster.ranking.comparisons import Comparison, in_force
from beprepared_dagster.ranking.pairs import choose_pairs

__all__ = ["BASE", "Comparison", "Fit", "choose_pairs", "fit", "in_force", "kendall_tau"]
