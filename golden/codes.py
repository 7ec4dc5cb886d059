"""Weight code words: the bit patterns the hardware stores, and the integers they stand for.

Torch-free (NumPy only): shared by the config loader, the golden model, the quantizers and the
RTL generator. docs/arithmetic.md §1 is the specification.

* ``uniform``, b bits: two's complement, value in [-2^(b-1), 2^(b-1) - 1].
* ``pot``, b bits: ``sign`` (MSB, 1 = negative) and a (b-1)-bit exponent field ``m``;
  ``m = 0`` is zero, otherwise the value is ``±2^(m-1)``.
"""

from __future__ import annotations

import numpy as np

__all__ = ["SCHEMES", "weight_max_abs", "pot_max_exponent", "decode", "encode", "check_codes", "levels",
           "activation_range", "activation_max_abs"]

SCHEMES = {"pot": (2, 4), "uniform": (2, 4)}


def pot_max_exponent(bits: int) -> int:
    """Largest exponent e of a ``bits``-bit PoT code (value ±2^e): 2^(b-1) - 2."""
    return 2 ** (bits - 1) - 2


def weight_max_abs(scheme: str, bits: int) -> int:
    """Largest |integer weight| a code can stand for."""
    return 2 ** pot_max_exponent(bits) if scheme == "pot" else 2 ** (bits - 1)


def activation_range(bits: int) -> tuple[int, int]:
    """Integers an activation of ``bits`` bits carries (docs/arithmetic.md §2): [0, 1] for binary
    spikes (1 bit), two's complement [-2^(a-1), 2^(a-1) - 1] otherwise."""
    if bits < 1:
        raise ValueError(f"Activation bits must be >= 1, not {bits}")
    return (0, 1) if bits == 1 else (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)


def activation_max_abs(bits: int) -> int:
    """Largest |activation| of ``bits`` bits: 1 for spikes, 2^(a-1) otherwise."""
    lo, hi = activation_range(bits)
    return max(-lo, hi)


def check_codes(codes: np.ndarray, bits: int):
    """Return the first code outside [0, 2^bits) or ``None``."""
    bad = codes[(codes < 0) | (codes >= 2 ** bits)]
    return int(bad.flat[0]) if bad.size else None


def decode(scheme: str, bits: int, codes) -> np.ndarray:
    """Code words → integer weight values (int64)."""
    codes = np.asarray(codes, dtype=np.int64)
    if scheme == "uniform":
        return np.where(codes >= 2 ** (bits - 1), codes - 2 ** bits, codes)
    if scheme == "pot":
        sign = codes >> (bits - 1)
        m = codes & (2 ** (bits - 1) - 1)
        magnitude = np.where(m == 0, 0, np.left_shift(1, np.maximum(m - 1, 0)))
        return np.where(sign == 1, -magnitude, magnitude)
    raise ValueError(f"Scheme must be 'pot' or 'uniform', not {scheme!r}")


def encode(scheme: str, bits: int, values) -> np.ndarray:
    """Integer weight values → code words; raises ``ValueError`` for a value with no code."""
    values = np.asarray(values, dtype=np.int64)
    if scheme == "uniform":
        lo, hi = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
        if ((values < lo) | (values > hi)).any():
            raise ValueError(f"uniform {bits}-bit values must lie in [{lo}, {hi}]")
        return values & (2 ** bits - 1)
    if scheme == "pot":
        magnitude = np.abs(values)
        m = np.where(magnitude == 0, 0, np.floor(np.log2(np.maximum(magnitude, 1))).astype(np.int64) + 1)
        if ((magnitude != 0) & (np.left_shift(1, np.maximum(m - 1, 0)) != magnitude)).any() \
                or (m > pot_max_exponent(bits) + 1).any():
            raise ValueError(f"pot {bits}-bit values must be 0 or ±2^e with 0 <= e <= {pot_max_exponent(bits)}")
        return np.where(values < 0, 2 ** (bits - 1), 0) + m
    raise ValueError(f"Scheme must be 'pot' or 'uniform', not {scheme!r}")


def levels(scheme: str, bits: int) -> np.ndarray:
    """All distinct integer values a code can stand for, ascending."""
    return np.unique(decode(scheme, bits, np.arange(2 ** bits)))
