"""Where verified code comes from: the candidate sources of the compiler.

* :func:`solve_rows` — the teacher solves each training row as code (several samples,
  two prompt styles), verified by the task metric; every verified solution is kept with its
  intermediate values (:class:`RowSolution`).
* :func:`program_candidates` — verified programs for the task (:class:`Program`): typed
  solve-then-lift, whole-task code, and an enumerative search when nothing else verifies
  (arithmetic over quantities, or string transforms of an input or a mention of one).
* :func:`parser_candidates` — teacher-written parsing code for named fields
  (:class:`Parser`), verified on the training rows and on perturbed copies of them.
* :func:`reader_candidates` — sgde's own deterministic readers (which typed mention of an
  input a field is), emitted as standard-library code and verified the same way; tried
  before the teacher's parsers.

All teacher code runs only in the sandbox; teacher garbage gives fewer candidates and an
event saying why, never an exception.
"""

from sgde.optimize.sources.code import instrument
from sgde.optimize.sources.enumerate import SearchResult, search_expressions
from sgde.optimize.sources.enumerate_text import TextSearch, search_text_transforms
from sgde.optimize.sources.parsers import Parser, parser_candidates
from sgde.optimize.sources.programs import Program, SourceBudget, program_candidates
from sgde.optimize.sources.readers import ReaderSearch, reader_candidates
from sgde.optimize.sources.solutions import RowSolution, solve_rows

__all__ = [
    "Parser",
    "Program",
    "ReaderSearch",
    "RowSolution",
    "SearchResult",
    "SourceBudget",
    "TextSearch",
    "instrument",
    "parser_candidates",
    "program_candidates",
    "reader_candidates",
    "search_expressions",
    "search_text_transforms",
    "solve_rows",
]
