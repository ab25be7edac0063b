"""Drift of the confidence / logit distribution: KL divergence, PSI, Jensen-Shannon, KS."""
