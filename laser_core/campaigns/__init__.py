"""Experiment campaigns: ``laser sweep`` runs many variants of a recipe on a local or SLURM
executor, resumably; ``laser compare`` tables and plots what they gave."""
