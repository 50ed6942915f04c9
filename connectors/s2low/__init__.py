"""S²LOW legality-control connector: ACTES messages, API client and simulator."""
