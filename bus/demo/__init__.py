"""Demo material: tenants and generated documents of every flow."""
