"""Web pages rendered by Slicer's own views (trame-slicer): the reader study served to readers'
browsers (:mod:`.gateway`, :mod:`.reader_page`) and the review page of a ``cmsynth run``
(:mod:`.review_page`, ``cmsynth view``). Needs the optional ``web`` extra; only the command
line imports it, when one of those commands runs."""
