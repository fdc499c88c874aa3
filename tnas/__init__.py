"""tnas: Transfer NAS with meta-learned Bayesian surrogates (Shala et al., ICLR 2023).

Subpackages, in pipeline order:

- :mod:`tnas.space`: the NAS-Bench-201 search space (cells, DAG view, moves);
- :mod:`tnas.oracles`: answers to "how good is this cell?" (benchmark tables);
- :mod:`tnas.search`: the ask/tell runner, the baselines and ``python -m tnas.search``.
"""

__version__ = "0.1.0"
