"""Value reviews, decisions and learnings: the learn → adjust half (DESIGN.md §1, §5b).

``models`` (imported by ``outcomes.models`` so Django finds them), ``snapshot`` (the
frozen tree document and the changes between two of them, pure functions over rows),
``services`` (writes), ``selectors`` (reads), ``markdown`` (a published review as text).
"""
