"""ENSAP (espace numérique sécurisé de l'agent public): pay slips deposited in batches,
each batch an ``envoi-BP-Generique`` XML envelope plus the PDFs, encrypted to ENSAP."""
