import numpy as np


def derive_seed(*parts: int) -> int:
    """A 31-bit seed that depends on every part, stable across platforms."""
    state = np.random.SeedSequence([int(p) for p in parts]).generate_state(1)
    return int(state[0]) & 0x7FFFFFFF
