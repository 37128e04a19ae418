"""The assignment engine: take a suite (``assignments``), submit it (``submissions``),
skip and expire; the row locks and slot counters (``locks``), the prebuilt statements of
the hot path (``sql``), what a labeler sees of a suite (``views``) and which pools a
labeler may work on (``available``)."""
