"""Dataset assembly: from ``track_labels`` to a balanced, grouped, weighted dataset.

Modules, in data-flow order (each a DataFrame-in, DataFrame-out step, plus numpy cores that
work on bounded tables only):

- :mod:`.inputs`: the checks of ``track_labels`` (its contract is in
  :mod:`ctx_spark.schema`); 0/1 ``labels`` and the label ``pattern`` bitmask.
- :mod:`.patterns`: label-pattern counts (at most 2^m rows) and the subset-sum transform.
- :mod:`.balance`: the paper's rarest-context-first balancing.
- :mod:`.groups`: connected components of the track-artist/album graph.
- :mod:`.stratify` (numpy) and :mod:`.split`: stratified assignment of whole groups.
- :mod:`.weights`: the sample-level loss weights of the paper's sections 4.2-4.3.
- :mod:`.cooccurrence`: the context co-occurrence matrix, as a table and a heatmap.
- :mod:`.build`: the whole plan, step by step; :mod:`.settings`: the ``dataset`` section;
  :mod:`.run`: the stage runner (reads ``track_labels``, writes the outputs and report).
"""

from ctx_spark.dataset.settings import SPLITS, DatasetSettings, SplitFractions

__all__ = ["DatasetSettings", "SplitFractions", "SPLITS"]
