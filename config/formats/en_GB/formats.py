"""en-GB formats with ISO first among the input formats.

Django renders a form field's value with the first input format of the active locale
(en-GB: 01/09/2026); a browser's ``<input type=date>`` can show only ISO (2026-09-01,
HTML Living Standard, "valid date string") and looks empty otherwise. With ISO first,
every date input of every form renders a value the browser can show, whatever its
widget; typed British dates are still accepted.
"""

DATE_INPUT_FORMATS = ["%Y-%m-%d", "%d/%m/%Y", "%d/%m/%y"]
TIME_INPUT_FORMATS = ["%H:%M:%S", "%H:%M:%S.%f", "%H:%M"]
DATETIME_INPUT_FORMATS = [
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M:%S.%f",
    "%Y-%m-%d %H:%M",
    "%d/%m/%Y %H:%M:%S",
    "%d/%m/%Y %H:%M:%S.%f",
    "%d/%m/%Y %H:%M",
    "%d/%m/%y %H:%M:%S",
    "%d/%m/%y %H:%M:%S.%f",
    "%d/%m/%y %H:%M",
]
