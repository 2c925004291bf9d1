"""Hypothesis strategies shared by the tests: odd per-channel area arrays."""

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

#: Areas a real peak can have plus the ones it should not: negative noise, NaN, inf,
#: all-zero rows, one lit channel, huge values.
area_values = st.one_of(
    st.just(0.0),
    st.floats(-2.0, 5.0),
    st.floats(0.0, 1e5),
    st.sampled_from([np.nan, np.inf, -np.inf, 1e30]),
)


def area_per_channel(n_channels: int = 494, max_events: int = 4):
    """(n, n_channels) float32 arrays of odd areas [PE]."""
    return hnp.arrays(
        np.float32,
        st.tuples(st.integers(0, max_events), st.just(n_channels)),
        elements=area_values.map(np.float32),
    )
