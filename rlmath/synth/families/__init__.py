"""Problem families; importing this package registers every family in `FAMILIES`.

One module per topic; each family is a `make(rng, difficulty) -> Instance` function decorated
with `register`.
"""

from rlmath.synth.families import (  # noqa: F401
    algebra,  # noqa: F401
    arithmetic,  # noqa: F401
    calculus,  # noqa: F401
    counting,  # noqa: F401
    data,
    geometry,  # noqa: F401
    number_theory,  # noqa: F401
    polynomials,  # noqa: F401
    rationals,  # noqa: F401
    words,
)
