"""Document stores (GED): deposit a document's files with their metadata."""
