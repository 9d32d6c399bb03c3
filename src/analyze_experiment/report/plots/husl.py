"""Evenly spaced HUSL hues as hex colours: the run palette beyond Okabe–Ito's eight.

The colours are exactly those of ``seaborn.color_palette("husl", n).as_hex()`` (a test
compares them for every n up to 64), computed here because importing seaborn to call one
function took longer than drawing a figure. HUSL (Boronine's human-friendly HSL, the
predecessor of HSLuv) is CIELUV's lightness–chroma–hue with the chroma scaled to the largest
one sRGB shows at that lightness and hue, so equal steps of hue look equally different and
equally bright. The arithmetic follows seaborn's vendored ``husl`` 2.1.0 (MIT licence)
operation for operation, which is what keeps the floats — and so the hex codes — identical.
"""

from __future__ import annotations

import math

import numpy as np

_M = ((3.2406, -1.5372, -0.4986), (-0.9689, 1.8758, 0.0415), (0.0557, -0.2040, 1.0570))
"""XYZ → linear sRGB (D65)."""
_REF_U, _REF_V = 0.19784, 0.46834
"""The D65 white point's u′, v′."""
_LAB_E, _LAB_K = 0.008856, 903.3


def _max_chroma(lightness: float, hue: float) -> float:
    """The largest CIELUV chroma at this lightness and hue (degrees) that stays inside sRGB."""
    hrad = math.radians(hue)
    sin_h, cos_h = math.sin(hrad), math.cos(hrad)
    sub1 = math.pow(lightness + 16, 3.0) / 1560896.0
    sub2 = sub1 if sub1 > 0.008856 else lightness / 903.3
    result = float("inf")
    for m1, m2, m3 in _M:
        top = (0.99915 * m1 + 1.05122 * m2 + 1.14460 * m3) * sub2
        rbottom = 0.86330 * m3 - 0.17266 * m2
        lbottom = 0.12949 * m3 - 0.38848 * m1
        bottom = (rbottom * sin_h + lbottom * cos_h) * sub2
        for t in (0.0, 1.0):
            c = lightness * (top - 1.05122 * t) / (bottom + 0.17266 * sin_h * t)
            if 0.0 < c < result:
                result = c
    return result


def _f_inv(t: float) -> float:
    return math.pow(t, 3.0) if math.pow(t, 3.0) > _LAB_E else (116.0 * t - 16.0) / _LAB_K


def _from_linear(c: float) -> float:
    return 12.92 * c if c <= 0.0031308 else 1.055 * math.pow(c, 1.0 / 2.4) - 0.055


def husl_to_rgb(hue: float, saturation: float, lightness: float) -> list[float]:
    """sRGB (0–1, not clipped) of a HUSL colour: hue in degrees, saturation and lightness 0–100."""
    if lightness > 99.9999999:
        lum, chroma = 100.0, 0.0
    elif lightness < 0.00000001:
        lum, chroma = 0.0, 0.0
    else:
        lum, chroma = lightness, _max_chroma(lightness, hue) / 100.0 * saturation
    if lum == 0:
        return [0.0, 0.0, 0.0]
    hrad = math.radians(hue)
    u, v = math.cos(hrad) * chroma, math.sin(hrad) * chroma
    y = _f_inv((lum + 16.0) / 116.0)  # * refY, which is 1
    var_u = u / (13.0 * lum) + _REF_U
    var_v = v / (13.0 * lum) + _REF_V
    x = 0.0 - (9.0 * y * var_u) / ((var_u - 4.0) * var_v - var_u * var_v)
    z = (9.0 * y - (15.0 * var_v * y) - (var_v * x)) / (3.0 * var_v)
    return [_from_linear(sum(a * b for a, b in zip(row, (x, y, z), strict=True))) for row in _M]


def husl_hex(n: int, h: float = 0.01, s: float = 0.9, lightness: float = 0.65) -> list[str]:
    """``n`` evenly spaced hues starting at ``h`` (a fraction of the circle), as ``#rrggbb``.

    seaborn's ``husl_palette`` defaults and steps: hues on a 0–359° circle, saturation and
    lightness scaled to 0–99, each channel clipped to 0–1 and rounded to 0–255."""
    hues = np.linspace(0, 1, int(n) + 1)[:-1]
    hues += h
    hues %= 1
    hues *= 359
    out = []
    for hue in hues:
        rgb = np.clip(husl_to_rgb(hue, s * 99, lightness * 99), 0, 1)
        out.append("#" + "".join(format(round(float(c) * 255), "02x") for c in rgb))
    return out
