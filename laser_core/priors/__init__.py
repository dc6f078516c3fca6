"""The second stage of a run: priors over its codes, trained, evaluated and sampled."""
