"""larp.stages.checks: a path passed to a stage must belong to the variant its params describe."""

from __future__ import annotations

import pytest

from larp.errors import StageError
from larp.stages.checks import check_dataset, check_tokens


def test_check_dataset_names_both_datasets_and_the_key():
    check_dataset("clip store x", "synthetic", "synthetic", "tokenizers.larp.val_dataset")
    with pytest.raises(StageError, match=r"clip store x was made from dataset 'ucf101' but "
                                         r"tokenizers\.larp\.val_dataset is 'synthetic'"):
        check_dataset("clip store x", "ucf101", "synthetic", "tokenizers.larp.val_dataset")


def test_check_tokens_checks_the_tokenizer_and_the_dataset():
    check_tokens({"variant": "larp", "dataset": "synthetic"}, "results/tokens/larp/synthetic", "larp", "synthetic")
    check_tokens({"variant": "larp"}, "results/tokens/larp/synthetic", "larp", "synthetic")  # older meta.json
    with pytest.raises(StageError, match="tokens of tokenizer 'patchwise' but the generator trains on 'larp'"):
        check_tokens({"variant": "patchwise", "dataset": "synthetic"}, "t", "larp", "synthetic")
    with pytest.raises(StageError, match="made from dataset 'k600'"):
        check_tokens({"variant": "larp", "dataset": "k600"}, "t", "larp", "synthetic")
    with pytest.raises(StageError, match="made from dataset 'k600'"):
        check_tokens({"variant": "larp"}, "results/tokens/larp/k600", "larp", "synthetic")
