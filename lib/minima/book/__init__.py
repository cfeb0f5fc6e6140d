"""The book: the papermill batch runner (:mod:`~minima.book.runner`), page provenance
(:mod:`~minima.book.provenance`), results files (:mod:`~minima.book.results`), figures
(:mod:`~minima.book.plots`), the claims ledger as pages show it (:mod:`~minima.book.ledger`),
the experiment pages' tables and sentences (:mod:`~minima.book.summaries`), human table labels
(:mod:`~minima.book.tables`) and the site build (:mod:`~minima.book.site`).
Modules are imported by name (``from minima.book import plots``): the runner and the site build
need no plotting stack."""
__all__ = ["ledger", "plots", "provenance", "results", "runner", "site", "summaries", "tables"]
