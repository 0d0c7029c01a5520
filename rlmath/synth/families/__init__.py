"""Problem families; importing this package registers every family in `FAMILIES`.

One module per topic; each family is a `make(rng, difficulty) -> Instance` function decorated
with `register`.
"""

from rlmath.synth.families import arithmetic  # noqa: F401
from rlmath.synth.families import rationals  # noqa: F401
from rlmath.synth.families import algebra  # noqa: F401
from rlmath.synth.families import polynomials  # noqa: F401
from rlmath.synth.families import calculus  # noqa: F401
from rlmath.synth.families import number_theory  # noqa: F401
from rlmath.synth.families import counting  # noqa: F401
from rlmath.synth.families import geometry  # noqa: F401
from rlmath.synth.families import data, words  # noqa: F401
