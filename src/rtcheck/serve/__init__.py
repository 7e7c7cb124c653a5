"""``rtcheck serve``: a DICOM node that checks every plan it receives.

The node is a DICOM Storage SCP (pynetdicom) for the RT objects rtcheck reads, a store on
disk with an SQLite index, a queue that checks each plan in a worker process once its parts
have arrived, and a small HTTP application (starlette on uvicorn) with a JSON API and a list
page. The parts, from the bottom up:

=================  ==========================================================================
module             what it holds
=================  ==========================================================================
``objects``        the SOP classes the node accepts; what one received object is (typed)
``store``          writing objects to disk atomically, never over a different object
``index``          the SQLite index: objects, plans, checks (history), events
``facts``          the facts DICOM does not hold: from ``--facts`` or posted, as check arguments
``checks``         the check worker (a separate process) and the queue that feeds it
``node``           receiving, completeness, the settle timer, start-up reconciliation
``scp``            the pynetdicom application entity and its handlers
``app``            the HTTP application: JSON API, report, list page (jinja2 template)
=================  ==========================================================================

Importing this package imports nothing heavy; pynetdicom, starlette and uvicorn come with the
``serve`` extra (``pip install "rtcheck[serve]"``).
"""

from __future__ import annotations

from rtcheck.errors import RTCheckError

__all__ = ["ServeError"]


class ServeError(RTCheckError):
    """A node that cannot start: a port in use, a store that cannot be written, a missing
    extra. One line naming the object and the problem (the command prints it, exit 2)."""
