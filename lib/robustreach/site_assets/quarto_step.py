"""Quarto's pre- and post-render steps for the results website (see `_quarto.yml`).

Quarto runs this file with the first `python3` on the PATH, which is the project's only when
its environment is active. So it checks first that `robustreach` can be imported, and fails
with what to activate otherwise, before Quarto writes any page. Then it hands over to
`robustreach.site.quarto_step`:

    pre-render:  with a part's profile (`--profile demo`, `part1`, `part2`), run that part's
                 batch; then make the page list (current runs only) and the listing
    post-render: make every page load its scripts from the site itself
"""

import sys

try:
    from robustreach.site import quarto_step
except ImportError as error:
    sys.stderr.write(
        f"error: `quarto render` needs the robustreach environment ({error}).\n"
        "Activate it first: `. .venv/bin/activate` (pip install -e .) or `conda activate robustreach`,\n"
        "then run `quarto render` again from that shell.\n"
    )
    raise SystemExit(3) from None

if __name__ == "__main__":
    raise SystemExit(quarto_step(sys.argv[1:]))
