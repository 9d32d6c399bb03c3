"""Word-level (SWAR) number decoding over a raw byte buffer: the step and epoch digits before
a ``|Loss: `` tag and the loss after it, eight bytes per numpy operation.

Exact by construction (see :func:`parse_decimals`); the reference for each fast path is the
digit-by-digit column loop beside it, and the property tests compare the two."""

from __future__ import annotations

import sys

import numpy as np

from analyze_experiment.sources.torchtune.limits import _EPOCH_DIGITS, _STEP_DIGITS

_LOSS_TAG = int.from_bytes(b"|Loss: ", "little")  # 7 bytes, compared under a 56-bit mask
_MASK7 = (1 << 56) - 1
_FULL_TAG = int.from_bytes(b"100%|", "little")  # 5 bytes, compared under a 40-bit mask
_MASK5 = np.uint64((1 << 40) - 1)
_POW10_LD = np.array([np.longdouble(10) ** i for i in range(28)], dtype=np.longdouble)


def _u64_view(a: np.ndarray) -> np.ndarray:
    """Every byte offset of ``a`` as an (unaligned) little-endian uint64: 8-byte compares in one gather."""
    return np.ndarray(shape=(len(a) - 7,), dtype="<u8", buffer=a, offset=0, strides=(1,))


def _windows(a: np.ndarray, pos: np.ndarray, words: int) -> np.ndarray:
    """The ``8 * words`` bytes from each ``pos`` as ``words`` little-endian uint64 columns.

    One gather through a void view (alignment 1) of that width: it costs about what one
    8-byte gather costs, so a frame's description and tag come in one gather, not three."""
    v = np.ndarray(shape=(len(a) - 8 * words + 1,), dtype=f"V{8 * words}", buffer=a, offset=0, strides=(1,))
    return v[pos].view("<u8").reshape(len(pos), words)


def _swar8(w: np.ndarray) -> np.ndarray:
    """Eight digit values, one per byte (first digit in the lowest byte) → the 8-digit number.

    Three multiply-shift-mask rounds over whole uint64 words (pairs, quads, octets) instead
    of one numpy pass per digit.
    """
    w = (w * np.uint64(10) + (w >> np.uint64(8))) & np.uint64(0x00FF00FF00FF00FF)
    w = (w * np.uint64(100) + (w >> np.uint64(16))) & np.uint64(0x0000FFFF0000FFFF)
    return ((w * np.uint64(10000) + (w >> np.uint64(32))) & np.uint64(0xFFFFFFFF)).astype(np.int64)


def _trailing_int(a: np.ndarray, end: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Value and length of the run of ASCII digits that ends just before each ``end``."""
    val = np.zeros(len(end), np.int64)
    k = np.zeros(len(end), np.int64)
    run = np.ones(len(end), bool)
    for j in range(1, width + 1):
        d = a[end - j] - np.uint8(48)
        run &= d <= 9
        if not run.any():
            break
        val += np.where(run, d.astype(np.int64) * 10 ** (j - 1), 0)
        k += run
    return val, k


_H = np.uint64(0x8080808080808080)
_ZEROS = np.uint64(0x3030303030303030)  # b"00000000"
_COLONS = np.uint64(0x3A3A3A3A3A3A3A3A)  # b"::::::::"
_TOP = np.array([((1 << 64) - 1) ^ ((1 << (8 * (8 - k))) - 1) for k in range(9)], dtype=np.uint64)
"""_TOP[k]: the k highest bytes of a word (the k bytes nearest its end)."""
_LOW = np.array([(1 << (8 * k)) - 1 for k in range(8)] + [(1 << 64) - 1], dtype=np.uint64)
"""_LOW[k]: the k lowest bytes of a word (its first k bytes)."""


def _non_digits(w: np.ndarray) -> np.ndarray:
    """Bit 7 of each byte of ``w`` set where that byte is not an ASCII digit (SWAR, no carries)."""
    hi = w | _H
    digit = (hi - _ZEROS) & ~(hi - _COLONS) & ~w & _H
    return digit ^ _H


def _digits_before_end(w: np.ndarray) -> np.ndarray:
    """Length (0-8) of the run of ASCII digits that ends at the last byte of each word ``w``."""
    nd = _non_digits(w)
    exp = np.frexp(nd.astype(np.float64))[1]  # highest non-digit byte j: exponent 8j + 8
    return np.where(nd == 0, 8, 8 - exp // 8)


def _first_set_byte(w: np.ndarray) -> np.ndarray:
    """Index (0-7) of the lowest byte of ``w`` with bit 7 set; 8 when there is none."""
    low = w & (~w + np.uint64(1))
    return np.bitwise_count(low - np.uint64(1)).astype(np.int64) >> 3


def _run_value(w: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Value of the last ``k`` (≤ 8) bytes of each word, all ASCII digits."""
    m = _TOP[k]
    return _swar8((w & m) - (_ZEROS & m))


def _lead_value(w: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Value of the first ``k`` (1-8) bytes of each word, all ASCII digits."""
    return _run_value(w << ((np.uint64(8) - k.astype(np.uint64)) << np.uint64(3)), k)


def _desc_ints(a: np.ndarray, u64: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, ...]:
    """Step and epoch of each description ``{epoch}|{step}`` that ends just before ``q`` (a ``|``).

    Same values as ``_trailing_int`` with widths 10 (step) and 10 (epoch): the 8 bytes before
    ``q`` are one word whose digit run is measured and decoded with word operations; the
    rare steps or epochs of 8 or more digits go through ``_trailing_int``. Returns (step, step
    digits, epoch, epoch digits, pipe) where ``pipe`` says a ``|`` precedes the step digits.
    """
    w = u64[q - 8]
    ks = _digits_before_end(w)
    step = _run_value(w, ks)
    pipe = a[q - 1 - ks] == 124
    we = u64[q - ks - 9]  # the 8 bytes ending just before that '|'
    ke = _digits_before_end(we)
    epoch = _run_value(we, ke)
    long = np.flatnonzero(ks == 8)
    if len(long):
        ql = q[long]
        step[long], ks[long] = _trailing_int(a, ql, _STEP_DIGITS)
        pipe[long] = a[ql - ks[long] - 1] == 124
        epoch[long], ke[long] = _trailing_int(a, ql - ks[long] - 1, _EPOCH_DIGITS)
    long_epoch = np.flatnonzero((ke == 8) & (ks < 8))
    if len(long_epoch):
        epoch[long_epoch], ke[long_epoch] = _trailing_int(a, q[long_epoch] - ks[long_epoch] - 1, _EPOCH_DIGITS)
    return step, ks, epoch, ke, pipe


def _parse_decimals_loop(a: np.ndarray, start: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`parse_decimals` one byte column at a time: any plain decimal form."""
    n = len(start)
    M = np.zeros(n, np.int64)
    nd = np.zeros(n, np.int64)
    frac = np.zeros(n, np.int64)
    active = np.ones(n, bool)
    term = np.zeros(n, bool)
    other = np.zeros(n, bool)
    dot = np.zeros(n, bool)
    for j in range(width):
        c = a[start + j]
        colon = c == 58
        term |= active & colon
        active &= ~(colon | (c == 10) | (c == 13))  # a line break before the ':' cuts the value
        if not active.any():
            break
        d = c - np.uint8(48)
        isd = active & (d <= 9)
        M = np.where(isd, M * 10 + d, M)
        nd += isd
        frac += isd & dot
        is_dot = active & (c == 46)
        other |= (active & ~isd & ~is_dot) | (is_dot & dot)
        dot |= is_dot
    ok = term & ~other & (nd > 0) & (nd <= 18)
    return (*_round_exact(M, np.minimum(frac, 27), ok), term)


def _round_exact(mantissa: np.ndarray, frac: np.ndarray | int, ok: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """mantissa / 10**frac rounded once to float64; ``ok`` cleared where double rounding is possible.

    How depends on numpy's ``longdouble`` here (:data:`_LONGDOUBLE`):

    - ``x87`` (Linux and Windows-gcc on x86-64: 64-bit significand in the low 8 of 16 bytes):
      the quotient is computed once in extended precision, correctly rounded to 64 bits, then
      rounded to 53. That second rounding can differ from rounding the true quotient only when
      the 11 dropped bits are exactly ``10000000000`` (the extended result sits on a float64
      midpoint), so those rows are cleared and go to Python's ``float``.
    - ``wide`` (quad precision, e.g. aarch64 Linux): the same quotient, cleared where it lies
      within 0.4995 ulp of a midpoint (reads no bit layout).
    - ``double`` (``longdouble`` is float64, e.g. macOS on arm64, MSVC): a mantissa up to 2**53
      and a power of ten up to 1e22 are both exact doubles, so one IEEE division is correctly
      rounded; every other row is cleared.
    """
    if _LONGDOUBLE == "x87":
        ld = mantissa.astype(np.longdouble)
        ld /= _POW10_LD[frac]
        significand = ld.view(np.uint64)[::2]
        return ld.astype(np.float64), ok & ((significand & np.uint64(0x7FF)) != np.uint64(0x400))
    if _LONGDOUBLE == "wide":
        ld = mantissa.astype(np.longdouble) / _POW10_LD[frac]
        d64 = ld.astype(np.float64)
        r = np.abs(ld - d64.astype(np.longdouble))
        return d64, ok & (r < np.spacing(d64).astype(np.longdouble) * np.longdouble(0.4995))
    frac_ok = np.asarray(frac) <= 22
    d64 = mantissa.astype(np.float64) / _POW10_F64[np.minimum(frac, 22)]
    return d64, ok & (mantissa <= 2**53) & frac_ok


def _longdouble_kind() -> str:
    """``x87``, ``wide`` or ``double``: how :func:`_round_exact` can round exactly on this platform."""
    info = np.finfo(np.longdouble)
    if info.nmant == 63 and np.dtype(np.longdouble).itemsize == 16 and sys.byteorder == "little":
        return "x87"
    return "wide" if info.nmant >= 63 else "double"


_LONGDOUBLE = _longdouble_kind()
_POW10_F64 = np.array([10.0**i for i in range(23)])


def parse_decimals(a: np.ndarray, start: np.ndarray, width: int = 26) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Parse the plain decimal (``4.921807289123535``) that starts at each ``start`` and ends at ``:``.

    Exact: the digits form an integer mantissa M (≤ 18 digits) and a power of ten; M/10^k is
    computed in extended precision and rounded once to float64, except where that rounding
    could be a double rounding (extended result on a float64 midpoint). Those rows, and every
    row that is not a plain unsigned decimal (``nan``, ``inf``, ``-1.5``, ``1e-05``, odd text),
    come back with ``exact=False`` for Python's ``float``. Returns (values, exact,
    terminated), ``terminated`` meaning a ``:`` ended the text within ``width`` bytes, before any line break.

    The usual loss form ``d.`` plus at most 17 decimals is read as three 8-byte words per
    row (a byte matrix for the checks, :func:`_swar8` for the digits); other rows go
    through the column loop. ``a`` must hold ``width`` bytes after every start (≥ 26 read).
    """
    n = len(start)
    if n == 0 or width < 26:
        return _parse_decimals_loop(a, start, width)
    head, w1, w2 = _windows(a, start, 3).T.copy()  # the 24 bytes from each start, in one gather
    v0 = (head >> np.uint64(16)) | (w1 << np.uint64(48))  # decimals 0-7
    v1 = (w1 >> np.uint64(16)) | (w2 << np.uint64(48))  # decimals 8-15
    nd0, nd1 = _non_digits(v0), _non_digits(v1)
    g = np.where(nd0 != 0, _first_set_byte(nd0), 8 + _first_set_byte(nd1))  # decimals before a non-digit
    d16 = ((w2 >> np.uint64(16)) & np.uint64(0xFF)).astype(np.uint8) - np.uint8(48)  # a 17th decimal
    g += (g == 16) & (d16 <= 9)
    d0 = (head & np.uint64(0xFF)).astype(np.int64) - 48
    dot = (head & np.uint64(0xFF00)) == np.uint64(0x2E00)
    fast = (g <= 17) & (a[start + 2 + g] == 58) & (d0 >= 0) & (d0 <= 9) & dot
    m0, m1 = _LOW[np.minimum(g, 8)], _LOW[np.clip(g - 8, 0, 8)]
    hi, mid = _swar8((v0 & m0) - (_ZEROS & m0)), _swar8((v1 & m1) - (_ZEROS & m1))
    mantissa = d0 * 10**17 + (hi * 100_000_000 + mid) * 10 + np.where(g == 17, d16, 0)
    mantissa[~fast] = 0
    values, exact = _round_exact(mantissa, 17, fast)
    term = fast.copy()
    slow = np.flatnonzero(~fast)
    if len(slow):
        v, ok, t = _parse_decimals_loop(a, start[slow], width)
        values[slow], exact[slow], term[slow] = v, ok, t
    return values, exact, term
