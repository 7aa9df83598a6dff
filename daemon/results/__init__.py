"""Results: the recorder (the one writer of the store), the SQLite store and its schema, live events, teams."""
