"""What every claim's evidence looks like: one row per comparison, the same for all claims.

A *paired* claim is tested on comparisons (two runs that differ only in what the claim is
about: the grown network against a fully connected twin at the same task, size, batch, seed
and protocol); a *trend* claim on single runs (a rank correlation). Evidence builders return
a DataFrame with :data:`PAIRED` or :data:`TREND` columns; the ledger
(:mod:`minima.claims.ledger`) turns it into verdicts.
"""
from __future__ import annotations

#: a paired comparison: ``value`` is its effect (a ratio or a difference, as the claim says),
#: ``supports`` whether it agrees with the claim, ``certified`` whether both of its points are
#: certified (minima, converged paths), ``cluster`` the independent unit it belongs to (its seed);
#: for a flatness comparison, ``loss_ratio`` the training cross-entropies in the same order as the
#: flatness ratio ``value`` (the arm the claim calls sharper over the one it calls flatter) and
#: ``collapsed`` whether its grown network collapsed onto its direct input-output map (NaN: not
#: recorded)
PAIRED = ("scope", "protocol", "measure", "cluster", "value", "supports", "certified", "evidence", "loss_ratio",
          "collapsed")
#: a run of a trend claim: ``x`` the measure, ``y`` what it should go with
TREND = ("scope", "protocol", "measure", "cluster", "x", "y", "certified", "evidence")


def flag(table, column: str, absent: bool = False):
    """A yes/no column of a results table as booleans: written by pandas as True/False, read
    back from a CSV as bools or strings, empty where not recorded (False). ``absent``: the
    value of every row when the table has no such column."""
    import pandas as pd

    if column not in table:
        return pd.Series(absent, index=table.index)
    return table[column].astype(str).str.lower().eq("true")


def frame(rows, columns):
    """``rows`` (dicts, or a DataFrame) with exactly ``columns``, even when there are none."""
    import pandas as pd

    table = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(list(rows))
    return table.reindex(columns=list(columns)) if len(table) else pd.DataFrame(columns=list(columns))
