"""i-Parapheur v5 (Libriciel signature workflow): client and simulator."""
