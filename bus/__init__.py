"""demat-bus runtime: settings, topics, broker, flow engine, object store, journal, CLI."""
