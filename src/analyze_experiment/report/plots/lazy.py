"""matplotlib's pyplot and plotly's graph objects, imported on first use.

The report's parent process plans every figure (which ones exist, with what data) but by
default draws none of them: worker processes do (:mod:`.specs`). Importing pyplot costs about
a third of a second and plotly's graph objects a fifth, so the modules that hold the drawing
functions name these libraries through the stand-ins below instead of importing them; the
import happens the first time a drawing function touches ``plt.…`` or ``go.…``, in whichever
process draws. Annotations (``-> Figure``, ``ax: plt.Axes``) are never evaluated
(``from __future__ import annotations``), so they cost nothing either.

pyplot comes with the Agg backend selected: figures are only ever written to files, and the
library may run on a cluster node without a display.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any


class LazyModule:
    """Stands in for a module until an attribute is read, then imports it and delegates."""

    def __init__(self, name: str, *, agg: bool = False) -> None:
        self._name = name
        self._agg = agg
        self._module: ModuleType | None = None

    def _load(self) -> ModuleType:
        if self._module is None:
            if self._agg:
                import matplotlib

                matplotlib.use("Agg")  # files only; never open a window
            self._module = importlib.import_module(self._name)
        return self._module

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._load(), attr)

    def __repr__(self) -> str:
        state = "imported" if self._module is not None else "not imported yet"
        return f"<lazy module {self._name!r} ({state})>"


mpl: Any = LazyModule("matplotlib", agg=True)
"""``matplotlib`` itself (Agg backend), for ``rc_context`` and friends."""

plt: Any = LazyModule("matplotlib.pyplot", agg=True)
"""``matplotlib.pyplot`` (Agg backend), imported when a figure is first drawn."""

go: Any = LazyModule("plotly.graph_objects")
"""``plotly.graph_objects``, imported when an interactive figure is first built."""
