"""Finance flows: invoices with Chorus Pro and PES accounting files to the treasury."""
