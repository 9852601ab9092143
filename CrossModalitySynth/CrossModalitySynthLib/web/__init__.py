"""Web pages rendered by Slicer's own views (trame-slicer): the reader study served to readers'
browsers (:mod:`.gateway`, :mod:`.reader_page`). Needs the optional ``web`` extra; nothing else in
the library imports this package."""
