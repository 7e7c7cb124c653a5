"""The bounds of the DVH engine's work, and the error raised when input cannot be honoured.

Every cap on samples, crossings, contour points, bins and chunk sizes lives here, so that
the memory and time a DVH may take can be read (and reviewed) in one place. The other
modules read them as ``limits.NAME`` at call time: a test lowers a cap by patching this
module (``monkeypatch.setattr(rtcheck.dvh.limits, "CHUNK_PAIRS", 1_000)``), and the whole
engine obeys. Leans on :mod:`rtcheck.errors` only.
"""

from __future__ import annotations

from rtcheck.errors import InputError

#: In-plane samples aimed at per structure, over all its planes (see
#: :func:`rtcheck.dvh.lattice.choose_step`).
DEFAULT_SAMPLE_BUDGET = 10_000
#: Finest in-plane / through-plane sampling step (mm).
MIN_STEP_MM = 0.1
#: Coarsest step for structures under 30 cc, where near-maximum doses decide verdicts (mm).
SMALL_STRUCTURE_STEP_MM = 0.5
#: Two consecutive planes of a structure more than this many structure-set plane spacings
#: apart are not contiguous (see the :mod:`rtcheck.dvh` docstring, *Geometry*).
CONTIGUOUS_GAP = 1.5
#: Hard cap on the histogram samples times the faces of their slabs (dose evaluations) of one
#: structure: about 50 MB of samples kept until the histogram is made.
MAX_SAMPLE_PAIRS = 2_000_000
#: Row crossings (contour edges x sampling rows) computed at once.
MAX_CROSSINGS = 1_000_000
#: Cap on the contour points times faces of the Dmax/Dmin search (their spacing grows beyond).
MAX_BOUNDARY_PAIRS = 8_000_000
#: Cap on the row crossings times dose planes of the grid-node search for Dmax/Dmin (beyond
#: it, Dmax and Dmin come from the samples and contour points only, with a warning).
MAX_NODE_WORK = 30_000_000
#: Contour edges processed at once: a structure's planes are taken in groups of about this
#: many edges, so memory does not grow with its vertex count.
GROUP_EDGES = 250_000
#: Points times faces evaluated at once: bounds every temporary array.
CHUNK_PAIRS = 250_000
#: Dose bins of a DVH at most (0.01 Gy bins up to 200 Gy of maximum dose).
MAX_BINS = 20_000
#: Contour coordinates (mm) beyond which a structure is refused (1 km).
MAX_COORDINATE_MM = 1e6


class DVHInputError(InputError, ValueError):
    """A structure or dose the DVH engine cannot honour in bounded memory, or not at all.

    The message names the structure (contour coordinates beyond 1 km, a dose that is not
    finite, more contours than even the coarsest sampling can afford).
    """
