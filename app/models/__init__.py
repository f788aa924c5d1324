"""Qt-free state behind the widgets: each widget is a view of one of these (tested without Qt)."""
