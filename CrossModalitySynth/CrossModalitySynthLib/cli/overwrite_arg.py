"""The one ``--overwrite`` option of every command that writes, with the one rule in its help."""

from ..io.writer import OVERWRITE_RULE


def add_overwrite_argument(p, what: str) -> None:
    """Add ``--overwrite`` to parser ``p``; ``what`` names the output it replaces ("OUT", "DIR/case_XXX")."""
    p.add_argument("--overwrite", action="store_true",
                   help=f"replace {what} if it exists. {OVERWRITE_RULE}. An input is never replaced "
                        "(an output that is an input, a link to one, or inside an input folder is refused)")
