"""mmgen.witness: a transparency-log witness (C2SP tlog-witness and tlog-cosignature).

It cosigns a log's checkpoint only after checking that it is signed by the log's key and
extends the last checkpoint it cosigned for that log, so a log that shows two histories
(a split view, or a history rewritten after a restore) cannot get both cosigned. Run by a
party other than the log's operator: `mmgen-witness serve` (or `mmgen witness serve`).
"""
