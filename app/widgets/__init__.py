"""Qt widgets; each is a view of one Qt-free model from app.models."""
