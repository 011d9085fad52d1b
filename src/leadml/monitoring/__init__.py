"""How scored leads converted: past scored files and an outcomes table read back
(:mod:`outcomes`), realised against predicted per period (:mod:`monitor`), the statistics it reads
(:mod:`statistics`), the alert rules (:mod:`alerts`) and the page (:mod:`page`)."""
