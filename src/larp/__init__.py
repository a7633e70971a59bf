"""LARP pipeline library: data, tokenizer (with AR prior), AR generator, metrics and analyses.

Paper: Wang et al., "LARP: Tokenizing Videos with a Learned Autoregressive Generative Prior", ICLR 2025.
"""

__version__ = "0.1.0"
