"""The learned mapping tier: training data, the embedding mapper, evaluation and serving.

Only :mod:`llama_mapper.model.data`, :mod:`~llama_mapper.model.text`,
:mod:`~llama_mapper.model.metrics` and :mod:`~llama_mapper.model.availability` are
importable without the ``ml`` extra; everything that needs torch imports it lazily.
"""
