"""LARP pipeline library: data, tokenizer (with AR prior), AR generator, metrics and analyses.

Paper: Wang et al., "LARP: Tokenizing Videos with a Learned Autoregressive Generative Prior", ICLR 2025.

Citations in this package: "paper §4.1", "paper App. A.2", "paper Table 1" are the paper; "facts §N" (or
``docs/official-code-facts.md §N``) is that section of the repository's notes on the official implementation
(hywang66/LARP) and its evaluation protocols; ``docs/tooling-notes.md §N`` the Snakemake / DVC / MLflow behaviours
the pipeline relies on.
"""

__version__ = "0.1.0"
