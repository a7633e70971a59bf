"""The stage layer: one ``run_*`` function per pipeline stage, each called by exactly one script in
``workflow/scripts/`` (which only parses arguments). A stage function takes the params its rule declares (a
larp.reads view) and the exact paths the rule passes, builds typed settings from the sections, calls the library
(larp.data, larp.tokenizer, larp.generator, larp.metrics, larp.analysis, larp.official), publishes every output
atomically (larp.io) and logs to MLflow (larp.tracking). Nothing below this layer resolves a path from params.

| module | stages |
|---|---|
| data | make_synthetic, extract_clips |
| tokenizer | train_tokenizer, encode_tokens |
| generator | train_generator, sample_videos |
| evaluation | train_detector, evaluate_tokenizer, evaluate_generator |
| tables | make_table1, make_table2, make_scaling |
| analysis | analysis_ngrams, analysis_importance, analysis_redundancy, make_claims |
| official | import_official |
"""
