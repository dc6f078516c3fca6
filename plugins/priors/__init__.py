"""Built-in priors: models of a run's codes for bits, entropy coding and sampling."""
