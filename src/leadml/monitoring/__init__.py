"""How scored leads converted: past scored files and an outcomes table read back
(:mod:`outcomes`), and realised against predicted, drift and alerts (:mod:`monitor`)."""
