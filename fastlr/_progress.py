"""Progress reporting for ``fastlr train``: a tqdm bar on a terminal, plain lines in a log.

``mode``: ``"bar"`` (tqdm; plain lines if tqdm is not installed), ``"lines"`` (one line per
update on stderr, easy to grep in logs and from tests), ``"none"``, or ``"auto"`` (a bar when
stderr is a terminal, lines otherwise).

May import: the standard library, tqdm (lazily).
"""

import sys


def _format_value(value):
    if isinstance(value, float):
        value += 0.0  # -0.0 (a mean log loss of exactly 0 comes out negative) prints as 0.0000
        return f"{value:.4g}" if abs(value) >= 1e4 or abs(value) < 1e-3 and value != 0 else f"{value:.4f}"
    return str(value)


class Progress:
    """``update(**postfix)`` after each epoch (or iteration); ``close()`` at the end."""

    def __init__(self, total, desc, mode="auto", unit="epoch", initial=0, file=None):
        self.file = sys.stderr if file is None else file
        self.total = total
        self.desc = desc
        self.unit = unit
        self.count = initial
        self._bar = None
        if mode == "auto":
            isatty = getattr(self.file, "isatty", None)
            mode = "bar" if isatty is not None and isatty() else "lines"
        if mode == "bar":
            try:
                from tqdm import tqdm
            except ImportError:
                mode = "lines"
            else:
                self._bar = tqdm(total=total, initial=initial, desc=desc, unit=unit, file=self.file,
                                 dynamic_ncols=True, leave=True)
        self.mode = mode

    def update(self, n=1, **postfix):
        self.count += n
        shown = {key: _format_value(value) for key, value in postfix.items() if value is not None}
        if self._bar is not None:
            self._bar.set_postfix(shown, refresh=False)
            self._bar.update(n)
        elif self.mode == "lines":
            fields = " ".join(f"{key}={value}" for key, value in shown.items())
            print(f"{self.desc}: {self.unit} {self.count}/{self.total} {fields}".rstrip(),
                  file=self.file, flush=True)

    def close(self):
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False
